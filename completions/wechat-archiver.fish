# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_wechat_archiver_global_optspecs
    string join \n home= v/verbose h/help V/version
end

function __fish_wechat_archiver_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_wechat_archiver_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_wechat_archiver_using_subcommand
    set -l cmd (__fish_wechat_archiver_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -s V -l version -d 'Print version'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "create" -d 'Set up a connector: a TeleMessage account, a target, mapping rules'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "login" -d 'Store the connector\'s passwords in the OS keyring'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "map" -d 'Work with user-mapping CSV files'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "sync" -d 'Copy newly archived items into the mapped mailboxes'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "status" -d 'Show connectors, their last runs and what was written where'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "receive" -d 'Serve LMTP for an e-mail connector (TeleMessage\'s SMTP forwarding through a local MTA)'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "deliver" -d 'Archive one message from standard input (an MTA\'s pipe transport)'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "import" -d 'Archive TeleMessage EML exports: ZIP batches, .eml files, directories'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "verify" -d 'Prove the archive complete and unaltered: exit 0 when everything checks, 3 when something does not, 1 when it could not check'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "ledger" -d 'Rebuild the ledger from the target, or check the two agree'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "demo" -d 'Run the bundled simulator and sync it into a local Maildir'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "simulate" -d 'Serve the bundled TeleMessage simulator (for tests and benchmarks)'
complete -c wechat-archiver -n "__fish_wechat_archiver_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l source -d 'Where items come from' -r -f -a "api\t'The TeleMessage archive API (`sync`)'
email\t'TeleMessage\'s SMTP forwarding and EML exports (`receive`, `deliver`, `import`)'"
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l domain -d 'E-mail source: an organisation mail domain (repeatable); automatic mapping by address applies only to them [default: the mapping file\'s domains]' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l endpoint -d 'TeleMessage API base URL (https://, or http:// to loopback only)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l username -d 'TeleMessage administrator user name' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l target -d 'maildir:DIR, imap://HOST:PORT, imaps://HOST:PORT or graph:TENANT_ID' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l mapping -d 'Custom user-mapping CSV (mobile number to mailbox)' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l default-region -d 'Region for numbers written without a country code (ISO 3166, e.g. CN)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l folder -d 'Archive folder in each mailbox' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l fallback-mailbox -d 'Mailbox that receives items with no mapped participant' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l target-user -d 'Admin user for IMAP targets (writes into every user\'s mailbox)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l auth -d 'How an IMAP target logs in' -r -f -a "plain\t'SASL PLAIN as an admin acting for each mailbox (--target-user)'
xoauth2\t'SASL XOAUTH2 with an Entra ID application\'s own token, each mailbox as the user (Exchange Online; --tenant, --client-id)'"
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l tenant -d 'Directory (tenant) id or verified domain, for --auth xoauth2' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l client-id -d 'Application (client) id for Graph targets and --auth xoauth2' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l cloud -d 'National cloud for Graph targets and --auth xoauth2' -r -f -a "global\t'Worldwide Microsoft 365 (also GCC)'
usgov\t'GCC High (graph.microsoft.us)'
usgov-dod\t'DoD (dod-graph.microsoft.us)'
china\t'Microsoft 365 operated by 21Vianet'"
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l graph-endpoint -d 'Graph service root override (a proxy, or a test server on loopback)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l login-endpoint -d 'Login authority root override (Graph targets and --auth xoauth2)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l large-item-fallback -d 'Graph target: items Graph cannot take whole go over IMAP with XOAUTH2, same application: `imap` (the cloud\'s Exchange Online) or an imaps:// URL' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l mailbox-from-recipient -d 'E-mail source: the envelope recipient (without its +tag) names the employee\'s mailbox'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l no-auto-mapping -d 'Do not map participants by the e-mail address TeleMessage holds'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l accept-terms -d 'Accept the TeleMessage terms of service without asking'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -l json -d 'Print the result as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -l connector -d 'Connector to log in (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -l password-stdin -d 'Read the secrets from standard input, one per line'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -l status -d 'Say where each secret comes from, without showing it'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -l forget -d 'Remove the connector\'s secrets from the keyring'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -l json -d 'Print the result as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand login" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and not __fish_seen_subcommand_from validate help" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and not __fish_seen_subcommand_from validate help" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and not __fish_seen_subcommand_from validate help" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and not __fish_seen_subcommand_from validate help" -f -a "validate" -d 'Check a mapping CSV before using it; exit 3 when it is not usable'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and not __fish_seen_subcommand_from validate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -l connector -d 'Connector whose settings (region, target, account) apply' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -l default-region -d 'Region for numbers written without a country code (overrides the connector\'s)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -l check-telemessage -d 'Warn about numbers TeleMessage does not know, and users with no mapping'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -l check-target -d 'Check that every mailbox is a valid user of the connector\'s target'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -l json -d 'Print the report as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Check a mapping CSV before using it; exit 3 when it is not usable'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand map; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -l connector -d 'Connector to run (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -l since -d 'Start of the window: a duration back from now (24h, 90m, 7d) or an RFC 3339 time [default: the connector\'s checkpoint, or 24h]' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -l until -d 'End of the window, same forms as --since [default: now]' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -l dry-run -d 'List what would be written, write nothing'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -l retry-unmapped -d 'Retry every unmapped item now, as after adding users to the target [default: those of the last 7 days; older ones when the mapping changed, or at least every 7 days]'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -l json -d 'Print the run\'s figures as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand sync" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand status" -l connector -d 'Only this connector' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand status" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand status" -l mailboxes -d 'List every mailbox (by default the 20 with the most copies; --json always lists every one)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand status" -l json -d 'Print as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand status" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand status" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand receive" -l connector -d 'E-mail connector to feed (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand receive" -l listen -d 'Loopback address and port to listen on, e.g. 127.0.0.1:2424' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand receive" -l socket -d 'Unix socket to listen on instead' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand receive" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand receive" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand receive" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand deliver" -l connector -d 'E-mail connector to feed (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand deliver" -l recipient -d 'Envelope recipient (repeatable), as the MTA passes it' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand deliver" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand deliver" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand deliver" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand import" -l connector -d 'E-mail connector to feed (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand import" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand import" -l json -d 'Print the figures as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand import" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand import" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -l connector -d 'Connector to verify (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -l since -d 'Start of the window of items to check, same forms as sync\'s [default: every copy; TeleMessage is listed for the 24 hours before the checkpoint]' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -l until -d 'End of the window [default: the connector\'s checkpoint]' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -l sample -d 'Read back this many copies picked at random instead of all' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -l expect-head -d 'A manifest head hash kept from an earlier sync: it must still be in the chain' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -l json -d 'Print the report as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand verify" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and not __fish_seen_subcommand_from rebuild check help" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and not __fish_seen_subcommand_from rebuild check help" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and not __fish_seen_subcommand_from rebuild check help" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and not __fish_seen_subcommand_from rebuild check help" -f -a "rebuild" -d 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and not __fish_seen_subcommand_from rebuild check help" -f -a "check" -d 'Compare the copies the target holds with the ledger\'s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and not __fish_seen_subcommand_from rebuild check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from rebuild" -l connector -d 'Connector to rebuild (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from rebuild" -l since -d 'Start of the window of items to look for, same forms as sync\'s (90d, 2026-01-01T00:00:00Z) [default: 24h]; it ends now' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from rebuild" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from rebuild" -l json -d 'Print the summary as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from rebuild" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from rebuild" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from check" -l connector -d 'Connector to check (may be left out when there is only one)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from check" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from check" -l json -d 'Print the findings as JSON'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from check" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "rebuild" -d 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "check" -d 'Compare the copies the target holds with the ledger\'s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand demo" -l dir -d 'Where to put the demo\'s home and archive' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand demo" -l items -d 'How many items the simulator generates' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand demo" -l seed -d 'Seed for the generated data' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand demo" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand demo" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand demo" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand simulate" -l listen -d 'Address to listen on (loopback)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand simulate" -l set -d 'Overrides: key=value,... (seed, items, large, large-size, faults=...)' -r
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand simulate" -l home -d 'Directory for configuration, the ledger and logs [default: $WECHAT_ARCHIVER_HOME, else the platform\'s data directory]' -r -F
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand simulate" -l ending-now -d 'End the generated window at the current hour instead of a fixed date'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand simulate" -s v -l verbose -d 'More detail on standard error (repeat for more)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "create" -d 'Set up a connector: a TeleMessage account, a target, mapping rules'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "login" -d 'Store the connector\'s passwords in the OS keyring'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "map" -d 'Work with user-mapping CSV files'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "sync" -d 'Copy newly archived items into the mapped mailboxes'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "status" -d 'Show connectors, their last runs and what was written where'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "receive" -d 'Serve LMTP for an e-mail connector (TeleMessage\'s SMTP forwarding through a local MTA)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "deliver" -d 'Archive one message from standard input (an MTA\'s pipe transport)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "import" -d 'Archive TeleMessage EML exports: ZIP batches, .eml files, directories'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "verify" -d 'Prove the archive complete and unaltered: exit 0 when everything checks, 3 when something does not, 1 when it could not check'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "ledger" -d 'Rebuild the ledger from the target, or check the two agree'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "demo" -d 'Run the bundled simulator and sync it into a local Maildir'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "simulate" -d 'Serve the bundled TeleMessage simulator (for tests and benchmarks)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and not __fish_seen_subcommand_from create login map sync status receive deliver import verify ledger demo simulate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and __fish_seen_subcommand_from map" -f -a "validate" -d 'Check a mapping CSV before using it; exit 3 when it is not usable'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and __fish_seen_subcommand_from ledger" -f -a "rebuild" -d 'Record the copies the target already holds for a window of items (after losing the home or restoring an older one); writes nothing to the target'
complete -c wechat-archiver -n "__fish_wechat_archiver_using_subcommand help; and __fish_seen_subcommand_from ledger" -f -a "check" -d 'Compare the copies the target holds with the ledger\'s: exit 0 when they agree, 3 when they differ, 1 when a folder could not be listed'
