// `--log-format auto|json|pretty` for the long-running commands (serve, webhook, agent).
import { Option } from 'commander';

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function logFormatOption(): Option {
  return new Option('--log-format <format>', 'json lines, or pretty one-liners with local time; auto: pretty on a terminal')
    .choices(LOG_FORMATS)
    .default('auto')
    .env('MESHPILOT_LOG_FORMAT');
}
