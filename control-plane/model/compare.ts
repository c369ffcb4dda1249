// One shared collator for the model's sorts. Its compare orders strings exactly as
// `a.localeCompare(b)` (default locale and options) does, but localeCompare sets up collation on
// every call, which made sorting thousands of names a large part of a build.
const collator = new Intl.Collator();

export const compareText: (a: string, b: string) => number = collator.compare;
