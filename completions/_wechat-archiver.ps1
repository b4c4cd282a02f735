
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'wechat-archiver' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'wechat-archiver'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'wechat-archiver' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Set up a connector: a TeleMessage account, a target, mapping rules')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Store the connector''s passwords in the OS keyring')
            [CompletionResult]::new('map', 'map', [CompletionResultType]::ParameterValue, 'Work with user-mapping CSV files')
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Copy newly archived items into the mapped mailboxes')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show connectors, their last runs and what was written where')
            [CompletionResult]::new('receive', 'receive', [CompletionResultType]::ParameterValue, 'Serve LMTP for an e-mail connector (TeleMessage''s SMTP forwarding through a local MTA)')
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Archive one message from standard input (an MTA''s pipe transport)')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Archive TeleMessage EML exports: ZIP batches, .eml files, directories')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove the archive complete and unaltered: exit 0 when everything checks, 3 when something does not, 1 when it could not check')
            [CompletionResult]::new('ledger', 'ledger', [CompletionResultType]::ParameterValue, 'Rebuild the ledger from the target, or check the two agree')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run the bundled simulator and sync it into a local Maildir')
            [CompletionResult]::new('simulate', 'simulate', [CompletionResultType]::ParameterValue, 'Serve the bundled TeleMessage simulator (for tests and benchmarks)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wechat-archiver;create' {
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where items come from')
            [CompletionResult]::new('--domain', '--domain', [CompletionResultType]::ParameterName, 'E-mail source: an organisation mail domain (repeatable); automatic mapping by address applies only to them [default: the mapping file''s domains]')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'TeleMessage API base URL (https://, or http:// to loopback only)')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'TeleMessage administrator user name')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'maildir:DIR, imap://HOST:PORT, imaps://HOST:PORT or graph:TENANT_ID')
            [CompletionResult]::new('--mapping', '--mapping', [CompletionResultType]::ParameterName, 'Custom user-mapping CSV (mobile number to mailbox)')
            [CompletionResult]::new('--default-region', '--default-region', [CompletionResultType]::ParameterName, 'Region for numbers written without a country code (ISO 3166, e.g. CN)')
            [CompletionResult]::new('--folder', '--folder', [CompletionResultType]::ParameterName, 'Archive folder in each mailbox')
            [CompletionResult]::new('--fallback-mailbox', '--fallback-mailbox', [CompletionResultType]::ParameterName, 'Mailbox that receives items with no mapped participant')
            [CompletionResult]::new('--target-user', '--target-user', [CompletionResultType]::ParameterName, 'Admin user for IMAP targets (writes into every user''s mailbox)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'How an IMAP target logs in')
            [CompletionResult]::new('--tenant', '--tenant', [CompletionResultType]::ParameterName, 'Directory (tenant) id or verified domain, for --auth xoauth2')
            [CompletionResult]::new('--client-id', '--client-id', [CompletionResultType]::ParameterName, 'Application (client) id for Graph targets and --auth xoauth2')
            [CompletionResult]::new('--cloud', '--cloud', [CompletionResultType]::ParameterName, 'National cloud for Graph targets and --auth xoauth2')
            [CompletionResult]::new('--graph-endpoint', '--graph-endpoint', [CompletionResultType]::ParameterName, 'Graph service root override (a proxy, or a test server on loopback)')
            [CompletionResult]::new('--login-endpoint', '--login-endpoint', [CompletionResultType]::ParameterName, 'Login authority root override (Graph targets and --auth xoauth2)')
            [CompletionResult]::new('--large-item-fallback', '--large-item-fallback', [CompletionResultType]::ParameterName, 'Graph target: items Graph cannot take whole go over IMAP with XOAUTH2, same application: `imap` (the cloud''s Exchange Online) or an imaps:// URL')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--mailbox-from-recipient', '--mailbox-from-recipient', [CompletionResultType]::ParameterName, 'E-mail source: the envelope recipient (without its +tag) names the employee''s mailbox')
            [CompletionResult]::new('--no-auto-mapping', '--no-auto-mapping', [CompletionResultType]::ParameterName, 'Do not map participants by the e-mail address TeleMessage holds')
            [CompletionResult]::new('--accept-terms', '--accept-terms', [CompletionResultType]::ParameterName, 'Accept the TeleMessage terms of service without asking')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'wechat-archiver;login' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'Connector to log in (may be left out when there is only one)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the secrets from standard input, one per line')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Say where each secret comes from, without showing it')
            [CompletionResult]::new('--forget', '--forget', [CompletionResultType]::ParameterName, 'Remove the connector''s secrets from the keyring')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;map' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a mapping CSV before using it; exit 3 when it is not usable')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wechat-archiver;map;validate' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'Connector whose settings (region, target, account) apply')
            [CompletionResult]::new('--default-region', '--default-region', [CompletionResultType]::ParameterName, 'Region for numbers written without a country code (overrides the connector''s)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--check-telemessage', '--check-telemessage', [CompletionResultType]::ParameterName, 'Warn about numbers TeleMessage does not know, and users with no mapping')
            [CompletionResult]::new('--check-target', '--check-target', [CompletionResultType]::ParameterName, 'Check that every mailbox is a valid user of the connector''s target')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;map;help' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a mapping CSV before using it; exit 3 when it is not usable')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wechat-archiver;map;help;validate' {
            break
        }
        'wechat-archiver;map;help;help' {
            break
        }
        'wechat-archiver;sync' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'Connector to run (may be left out when there is only one)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Start of the window: a duration back from now (24h, 90m, 7d) or an RFC 3339 time [default: the connector''s checkpoint, or 24h]')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'End of the window, same forms as --since [default: now]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be written, write nothing')
            [CompletionResult]::new('--retry-unmapped', '--retry-unmapped', [CompletionResultType]::ParameterName, 'Retry every unmapped item now, as after adding users to the target [default: those of the last 7 days; older ones when the mapping changed, or at least every 7 days]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the run''s figures as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;status' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'Only this connector')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--mailboxes', '--mailboxes', [CompletionResultType]::ParameterName, 'List every mailbox (by default the 20 with the most copies; --json always lists every one)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;receive' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'E-mail connector to feed (may be left out when there is only one)')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Loopback address and port to listen on, e.g. 127.0.0.1:2424')
            [CompletionResult]::new('--socket', '--socket', [CompletionResultType]::ParameterName, 'Unix socket to listen on instead')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;deliver' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'E-mail connector to feed (may be left out when there is only one)')
            [CompletionResult]::new('--recipient', '--recipient', [CompletionResultType]::ParameterName, 'Envelope recipient (repeatable), as the MTA passes it')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;import' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'E-mail connector to feed (may be left out when there is only one)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the figures as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;verify' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'Connector to verify (may be left out when there is only one)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Start of the window of items to check, same forms as sync''s [default: every copy; TeleMessage is listed for the 24 hours before the checkpoint]')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'End of the window [default: the connector''s checkpoint]')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'Read back this many copies picked at random instead of all')
            [CompletionResult]::new('--expect-head', '--expect-head', [CompletionResultType]::ParameterName, 'A manifest head hash kept from an earlier sync: it must still be in the chain')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;ledger' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('rebuild', 'rebuild', [CompletionResultType]::ParameterValue, 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Compare the copies the target holds with the ledger''s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wechat-archiver;ledger;rebuild' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'Connector to rebuild (may be left out when there is only one)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Start of the window of items to look for, same forms as sync''s (90d, 2026-01-01T00:00:00Z) [default: 24h]; it ends now')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the summary as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;ledger;check' {
            [CompletionResult]::new('--connector', '--connector', [CompletionResultType]::ParameterName, 'Connector to check (may be left out when there is only one)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the findings as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;ledger;help' {
            [CompletionResult]::new('rebuild', 'rebuild', [CompletionResultType]::ParameterValue, 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Compare the copies the target holds with the ledger''s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wechat-archiver;ledger;help;rebuild' {
            break
        }
        'wechat-archiver;ledger;help;check' {
            break
        }
        'wechat-archiver;ledger;help;help' {
            break
        }
        'wechat-archiver;demo' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Where to put the demo''s home and archive')
            [CompletionResult]::new('--items', '--items', [CompletionResultType]::ParameterName, 'How many items the simulator generates')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed for the generated data')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;simulate' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (loopback)')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Overrides: key=value,... (seed, items, large, large-size, faults=...)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]')
            [CompletionResult]::new('--ending-now', '--ending-now', [CompletionResultType]::ParameterName, 'End the generated window at the current hour instead of a fixed date')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on standard error (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'wechat-archiver;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Set up a connector: a TeleMessage account, a target, mapping rules')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Store the connector''s passwords in the OS keyring')
            [CompletionResult]::new('map', 'map', [CompletionResultType]::ParameterValue, 'Work with user-mapping CSV files')
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Copy newly archived items into the mapped mailboxes')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show connectors, their last runs and what was written where')
            [CompletionResult]::new('receive', 'receive', [CompletionResultType]::ParameterValue, 'Serve LMTP for an e-mail connector (TeleMessage''s SMTP forwarding through a local MTA)')
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Archive one message from standard input (an MTA''s pipe transport)')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Archive TeleMessage EML exports: ZIP batches, .eml files, directories')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove the archive complete and unaltered: exit 0 when everything checks, 3 when something does not, 1 when it could not check')
            [CompletionResult]::new('ledger', 'ledger', [CompletionResultType]::ParameterValue, 'Rebuild the ledger from the target, or check the two agree')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run the bundled simulator and sync it into a local Maildir')
            [CompletionResult]::new('simulate', 'simulate', [CompletionResultType]::ParameterValue, 'Serve the bundled TeleMessage simulator (for tests and benchmarks)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wechat-archiver;help;create' {
            break
        }
        'wechat-archiver;help;login' {
            break
        }
        'wechat-archiver;help;map' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a mapping CSV before using it; exit 3 when it is not usable')
            break
        }
        'wechat-archiver;help;map;validate' {
            break
        }
        'wechat-archiver;help;sync' {
            break
        }
        'wechat-archiver;help;status' {
            break
        }
        'wechat-archiver;help;receive' {
            break
        }
        'wechat-archiver;help;deliver' {
            break
        }
        'wechat-archiver;help;import' {
            break
        }
        'wechat-archiver;help;verify' {
            break
        }
        'wechat-archiver;help;ledger' {
            [CompletionResult]::new('rebuild', 'rebuild', [CompletionResultType]::ParameterValue, 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Compare the copies the target holds with the ledger''s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed')
            break
        }
        'wechat-archiver;help;ledger;rebuild' {
            break
        }
        'wechat-archiver;help;ledger;check' {
            break
        }
        'wechat-archiver;help;demo' {
            break
        }
        'wechat-archiver;help;simulate' {
            break
        }
        'wechat-archiver;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
