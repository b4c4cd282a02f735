
use builtin;
use str;

set edit:completion:arg-completer[wechat-archiver] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'wechat-archiver'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'wechat-archiver'= {
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Set up a connector: a TeleMessage account, a target, mapping rules'
            cand login 'Store the connector''s passwords in the OS keyring'
            cand map 'Work with user-mapping CSV files'
            cand sync 'Copy newly archived items into the mapped mailboxes'
            cand status 'Show connectors, their last runs and what was written where'
            cand receive 'Serve LMTP for an e-mail connector (TeleMessage''s SMTP forwarding through a local MTA)'
            cand deliver 'Archive one message from standard input (an MTA''s pipe transport)'
            cand import 'Archive TeleMessage EML exports: ZIP batches, .eml files, directories'
            cand verify 'Prove the archive complete and unaltered: exit 0 when everything checks, 3 when something does not, 1 when it could not check'
            cand ledger 'Rebuild the ledger from the target, or check the two agree'
            cand demo 'Run the bundled simulator and sync it into a local Maildir'
            cand simulate 'Serve the bundled TeleMessage simulator (for tests and benchmarks)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wechat-archiver;create'= {
            cand --source 'Where items come from'
            cand --domain 'E-mail source: an organisation mail domain (repeatable); automatic mapping by address applies only to them [default: the mapping file''s domains]'
            cand --endpoint 'TeleMessage API base URL (https://, or http:// to loopback only)'
            cand --username 'TeleMessage administrator user name'
            cand --target 'maildir:DIR, imap://HOST:PORT, imaps://HOST:PORT or graph:TENANT_ID'
            cand --mapping 'Custom user-mapping CSV (mobile number to mailbox)'
            cand --default-region 'Region for numbers written without a country code (ISO 3166, e.g. CN)'
            cand --folder 'Archive folder in each mailbox'
            cand --fallback-mailbox 'Mailbox that receives items with no mapped participant'
            cand --target-user 'Admin user for IMAP targets (writes into every user''s mailbox)'
            cand --auth 'How an IMAP target logs in'
            cand --tenant 'Directory (tenant) id or verified domain, for --auth xoauth2'
            cand --client-id 'Application (client) id for Graph targets and --auth xoauth2'
            cand --cloud 'National cloud for Graph targets and --auth xoauth2'
            cand --graph-endpoint 'Graph service root override (a proxy, or a test server on loopback)'
            cand --login-endpoint 'Login authority root override (Graph targets and --auth xoauth2)'
            cand --large-item-fallback 'Graph target: items Graph cannot take whole go over IMAP with XOAUTH2, same application: `imap` (the cloud''s Exchange Online) or an imaps:// URL'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --mailbox-from-recipient 'E-mail source: the envelope recipient (without its +tag) names the employee''s mailbox'
            cand --no-auto-mapping 'Do not map participants by the e-mail address TeleMessage holds'
            cand --accept-terms 'Accept the TeleMessage terms of service without asking'
            cand --json 'Print the result as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'wechat-archiver;login'= {
            cand --connector 'Connector to log in (may be left out when there is only one)'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --password-stdin 'Read the secrets from standard input, one per line'
            cand --status 'Say where each secret comes from, without showing it'
            cand --forget 'Remove the connector''s secrets from the keyring'
            cand --json 'Print the result as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;map'= {
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand validate 'Check a mapping CSV before using it; exit 3 when it is not usable'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wechat-archiver;map;validate'= {
            cand --connector 'Connector whose settings (region, target, account) apply'
            cand --default-region 'Region for numbers written without a country code (overrides the connector''s)'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --check-telemessage 'Warn about numbers TeleMessage does not know, and users with no mapping'
            cand --check-target 'Check that every mailbox is a valid user of the connector''s target'
            cand --json 'Print the report as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;map;help'= {
            cand validate 'Check a mapping CSV before using it; exit 3 when it is not usable'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wechat-archiver;map;help;validate'= {
        }
        &'wechat-archiver;map;help;help'= {
        }
        &'wechat-archiver;sync'= {
            cand --connector 'Connector to run (may be left out when there is only one)'
            cand --since 'Start of the window: a duration back from now (24h, 90m, 7d) or an RFC 3339 time [default: the connector''s checkpoint, or 24h]'
            cand --until 'End of the window, same forms as --since [default: now]'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --dry-run 'List what would be written, write nothing'
            cand --retry-unmapped 'Retry every unmapped item now, as after adding users to the target [default: those of the last 7 days; older ones when the mapping changed, or at least every 7 days]'
            cand --json 'Print the run''s figures as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;status'= {
            cand --connector 'Only this connector'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --mailboxes 'List every mailbox (by default the 20 with the most copies; --json always lists every one)'
            cand --json 'Print as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;receive'= {
            cand --connector 'E-mail connector to feed (may be left out when there is only one)'
            cand --listen 'Loopback address and port to listen on, e.g. 127.0.0.1:2424'
            cand --socket 'Unix socket to listen on instead'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;deliver'= {
            cand --connector 'E-mail connector to feed (may be left out when there is only one)'
            cand --recipient 'Envelope recipient (repeatable), as the MTA passes it'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;import'= {
            cand --connector 'E-mail connector to feed (may be left out when there is only one)'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --json 'Print the figures as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;verify'= {
            cand --connector 'Connector to verify (may be left out when there is only one)'
            cand --since 'Start of the window of items to check, same forms as sync''s [default: every copy; TeleMessage is listed for the 24 hours before the checkpoint]'
            cand --until 'End of the window [default: the connector''s checkpoint]'
            cand --sample 'Read back this many copies picked at random instead of all'
            cand --expect-head 'A manifest head hash kept from an earlier sync: it must still be in the chain'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --json 'Print the report as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;ledger'= {
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand rebuild 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target'
            cand check 'Compare the copies the target holds with the ledger''s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wechat-archiver;ledger;rebuild'= {
            cand --connector 'Connector to rebuild (may be left out when there is only one)'
            cand --since 'Start of the window of items to look for, same forms as sync''s (90d, 2026-01-01T00:00:00Z) [default: 24h]; it ends now'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --json 'Print the summary as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;ledger;check'= {
            cand --connector 'Connector to check (may be left out when there is only one)'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --json 'Print the findings as JSON'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;ledger;help'= {
            cand rebuild 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target'
            cand check 'Compare the copies the target holds with the ledger''s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wechat-archiver;ledger;help;rebuild'= {
        }
        &'wechat-archiver;ledger;help;check'= {
        }
        &'wechat-archiver;ledger;help;help'= {
        }
        &'wechat-archiver;demo'= {
            cand --dir 'Where to put the demo''s home and archive'
            cand --items 'How many items the simulator generates'
            cand --seed 'Seed for the generated data'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;simulate'= {
            cand --listen 'Address to listen on (loopback)'
            cand --set 'Overrides: key=value,... (seed, items, large, large-size, faults=...)'
            cand --home 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform''s data directory]'
            cand --ending-now 'End the generated window at the current hour instead of a fixed date'
            cand -v 'More detail on standard error (repeat for more)'
            cand --verbose 'More detail on standard error (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'wechat-archiver;help'= {
            cand create 'Set up a connector: a TeleMessage account, a target, mapping rules'
            cand login 'Store the connector''s passwords in the OS keyring'
            cand map 'Work with user-mapping CSV files'
            cand sync 'Copy newly archived items into the mapped mailboxes'
            cand status 'Show connectors, their last runs and what was written where'
            cand receive 'Serve LMTP for an e-mail connector (TeleMessage''s SMTP forwarding through a local MTA)'
            cand deliver 'Archive one message from standard input (an MTA''s pipe transport)'
            cand import 'Archive TeleMessage EML exports: ZIP batches, .eml files, directories'
            cand verify 'Prove the archive complete and unaltered: exit 0 when everything checks, 3 when something does not, 1 when it could not check'
            cand ledger 'Rebuild the ledger from the target, or check the two agree'
            cand demo 'Run the bundled simulator and sync it into a local Maildir'
            cand simulate 'Serve the bundled TeleMessage simulator (for tests and benchmarks)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wechat-archiver;help;create'= {
        }
        &'wechat-archiver;help;login'= {
        }
        &'wechat-archiver;help;map'= {
            cand validate 'Check a mapping CSV before using it; exit 3 when it is not usable'
        }
        &'wechat-archiver;help;map;validate'= {
        }
        &'wechat-archiver;help;sync'= {
        }
        &'wechat-archiver;help;status'= {
        }
        &'wechat-archiver;help;receive'= {
        }
        &'wechat-archiver;help;deliver'= {
        }
        &'wechat-archiver;help;import'= {
        }
        &'wechat-archiver;help;verify'= {
        }
        &'wechat-archiver;help;ledger'= {
            cand rebuild 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target'
            cand check 'Compare the copies the target holds with the ledger''s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed'
        }
        &'wechat-archiver;help;ledger;rebuild'= {
        }
        &'wechat-archiver;help;ledger;check'= {
        }
        &'wechat-archiver;help;demo'= {
        }
        &'wechat-archiver;help;simulate'= {
        }
        &'wechat-archiver;help;help'= {
        }
    ]
    $completions[$command]
}
