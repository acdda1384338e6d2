
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'talstrap' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'talstrap'
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
        'talstrap' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('preflight', 'preflight', [CompletionResultType]::ParameterValue, 'Check every node before touching it: mode, stage, version, disks')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Send each node its machine config, in parallel and idempotently')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Wait for every node to reach its expected stage; explain stuck ones')
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Bootstrap etcd once, wait for it to be healthy, fetch the kubeconfig')
            [CompletionResult]::new('discover', 'discover', [CompletionResultType]::ParameterValue, 'Find Talos nodes in address ranges and tell what state each is in')
            [CompletionResult]::new('sim', 'sim', [CompletionResultType]::ParameterValue, 'Run a simulated Talos cluster on loopback until Ctrl-C')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run every step against a simulated cluster on loopback: start here')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, powershell, elvish)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): talstrap''s, or one subcommand''s')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'talstrap;preflight' {
            [CompletionResult]::new('--talconfig', '--talconfig', [CompletionResultType]::ParameterName, 'talhelper''s talconfig.yaml [default: ./talconfig.yaml]')
            [CompletionResult]::new('--config-dir', '--config-dir', [CompletionResultType]::ParameterName, 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]')
            [CompletionResult]::new('--topf', '--topf', [CompletionResultType]::ParameterName, 'topf''s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)')
            [CompletionResult]::new('--env-file', '--env-file', [CompletionResultType]::ParameterName, 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--nodes', '--nodes', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Work only on nodes of this role')
            [CompletionResult]::new('--talosconfig', '--talosconfig', [CompletionResultType]::ParameterName, 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'talosconfig context [default: the file''s current context]')
            [CompletionResult]::new('--cert-fingerprint', '--cert-fingerprint', [CompletionResultType]::ParameterName, 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Timeout of one TCP connect')
            [CompletionResult]::new('--rpc-timeout', '--rpc-timeout', [CompletionResultType]::ParameterName, 'Timeout of one API call (one attempt)')
            [CompletionResult]::new('--attempts', '--attempts', [CompletionResultType]::ParameterName, 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'First retry delay; it doubles each attempt, with jitter, up to 30s')
            [CompletionResult]::new('--poll-interval', '--poll-interval', [CompletionResultType]::ParameterName, 'How often a node''s state is read when it cannot be watched')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('--server-dry-run', '--server-dry-run', [CompletionResultType]::ParameterName, 'Also have each maintenance-mode node validate its config (a dry-run apply that the node does not keep)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;apply' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Apply mode for nodes already configured (a node in maintenance mode always gets auto)')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'Apply mode for nodes already configured (a node in maintenance mode always gets auto)')
            [CompletionResult]::new('--try-timeout', '--try-timeout', [CompletionResultType]::ParameterName, 'With --mode try: how long the new config stays before Talos rolls it back')
            [CompletionResult]::new('--max-unavailable', '--max-unavailable', [CompletionResultType]::ParameterName, 'On a bootstrapped cluster, how many workers a change that reboots them may take down at once (control planes always go one at a time). 1 by default: talstrap does not drain nodes or read PodDisruptionBudgets, so rebooting more workers together can take every replica of a workload down; raise it for large pools')
            [CompletionResult]::new('--stuck-after', '--stuck-after', [CompletionResultType]::ParameterName, 'With --wait: a node whose stage and unmet conditions stay unchanged this long is reported stuck')
            [CompletionResult]::new('--talconfig', '--talconfig', [CompletionResultType]::ParameterName, 'talhelper''s talconfig.yaml [default: ./talconfig.yaml]')
            [CompletionResult]::new('--config-dir', '--config-dir', [CompletionResultType]::ParameterName, 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]')
            [CompletionResult]::new('--topf', '--topf', [CompletionResultType]::ParameterName, 'topf''s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)')
            [CompletionResult]::new('--env-file', '--env-file', [CompletionResultType]::ParameterName, 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--nodes', '--nodes', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Work only on nodes of this role')
            [CompletionResult]::new('--talosconfig', '--talosconfig', [CompletionResultType]::ParameterName, 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'talosconfig context [default: the file''s current context]')
            [CompletionResult]::new('--cert-fingerprint', '--cert-fingerprint', [CompletionResultType]::ParameterName, 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Timeout of one TCP connect')
            [CompletionResult]::new('--rpc-timeout', '--rpc-timeout', [CompletionResultType]::ParameterName, 'Timeout of one API call (one attempt)')
            [CompletionResult]::new('--attempts', '--attempts', [CompletionResultType]::ParameterName, 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'First retry delay; it doubles each attempt, with jitter, up to 30s')
            [CompletionResult]::new('--poll-interval', '--poll-interval', [CompletionResultType]::ParameterName, 'How often a node''s state is read when it cannot be watched')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show per node what would change; change nothing')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Then wait for the nodes as `talstrap verify` does')
            [CompletionResult]::new('--allow-degraded-etcd', '--allow-degraded-etcd', [CompletionResultType]::ParameterName, 'Start a rollout that reboots nodes even though etcd is already degraded (a control plane down, unhealthy or missing from the member list). Risky: rebooting another control plane of a degraded cluster can lose etcd quorum, and the Kubernetes API with it, until both are back')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;verify' {
            [CompletionResult]::new('--phase', '--phase', [CompletionResultType]::ParameterName, 'State to wait for')
            [CompletionResult]::new('--stuck-after', '--stuck-after', [CompletionResultType]::ParameterName, 'A node whose stage and unmet conditions stay unchanged this long is reported stuck')
            [CompletionResult]::new('--talconfig', '--talconfig', [CompletionResultType]::ParameterName, 'talhelper''s talconfig.yaml [default: ./talconfig.yaml]')
            [CompletionResult]::new('--config-dir', '--config-dir', [CompletionResultType]::ParameterName, 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]')
            [CompletionResult]::new('--topf', '--topf', [CompletionResultType]::ParameterName, 'topf''s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)')
            [CompletionResult]::new('--env-file', '--env-file', [CompletionResultType]::ParameterName, 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--nodes', '--nodes', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Work only on nodes of this role')
            [CompletionResult]::new('--talosconfig', '--talosconfig', [CompletionResultType]::ParameterName, 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'talosconfig context [default: the file''s current context]')
            [CompletionResult]::new('--cert-fingerprint', '--cert-fingerprint', [CompletionResultType]::ParameterName, 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Timeout of one TCP connect')
            [CompletionResult]::new('--rpc-timeout', '--rpc-timeout', [CompletionResultType]::ParameterName, 'Timeout of one API call (one attempt)')
            [CompletionResult]::new('--attempts', '--attempts', [CompletionResultType]::ParameterName, 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'First retry delay; it doubles each attempt, with jitter, up to 30s')
            [CompletionResult]::new('--poll-interval', '--poll-interval', [CompletionResultType]::ParameterName, 'How often a node''s state is read when it cannot be watched')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;bootstrap' {
            [CompletionResult]::new('--cidr', '--cidr', [CompletionResultType]::ParameterName, 'With --auto: find the candidates by scanning these ranges instead of reading talconfig.yaml (repeatable, or comma-separated)')
            [CompletionResult]::new('--quorum', '--quorum', [CompletionResultType]::ParameterName, 'With --auto: control planes that must be present before electing [default: every control plane in talconfig.yaml; required with --cidr]')
            [CompletionResult]::new('--etcd-timeout', '--etcd-timeout', [CompletionResultType]::ParameterName, 'How long etcd may take to become healthy after the bootstrap')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Write the admin kubeconfig to this file (atomically, mode 0600) [default: not fetched]')
            [CompletionResult]::new('--resend-after', '--resend-after', [CompletionResultType]::ParameterName, 'After a Bootstrap request that may have been accepted, send no other for this long')
            [CompletionResult]::new('--talconfig', '--talconfig', [CompletionResultType]::ParameterName, 'talhelper''s talconfig.yaml [default: ./talconfig.yaml]')
            [CompletionResult]::new('--config-dir', '--config-dir', [CompletionResultType]::ParameterName, 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]')
            [CompletionResult]::new('--topf', '--topf', [CompletionResultType]::ParameterName, 'topf''s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)')
            [CompletionResult]::new('--env-file', '--env-file', [CompletionResultType]::ParameterName, 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--nodes', '--nodes', [CompletionResultType]::ParameterName, 'Work only on these nodes: IP or hostname (repeatable, or comma-separated)')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Work only on nodes of this role')
            [CompletionResult]::new('--talosconfig', '--talosconfig', [CompletionResultType]::ParameterName, 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'talosconfig context [default: the file''s current context]')
            [CompletionResult]::new('--cert-fingerprint', '--cert-fingerprint', [CompletionResultType]::ParameterName, 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Timeout of one TCP connect')
            [CompletionResult]::new('--rpc-timeout', '--rpc-timeout', [CompletionResultType]::ParameterName, 'Timeout of one API call (one attempt)')
            [CompletionResult]::new('--attempts', '--attempts', [CompletionResultType]::ParameterName, 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'First retry delay; it doubles each attempt, with jitter, up to 30s')
            [CompletionResult]::new('--poll-interval', '--poll-interval', [CompletionResultType]::ParameterName, 'How often a node''s state is read when it cannot be watched')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('--auto', '--auto', [CompletionResultType]::ParameterName, 'Elect the target among the control planes (oldest boot time, then lowest IP) instead of taking the first one')
            [CompletionResult]::new('--wait-members', '--wait-members', [CompletionResultType]::ParameterName, 'Also wait until every control plane has joined etcd')
            [CompletionResult]::new('--allow-unreachable-control-planes', '--allow-unreachable-control-planes', [CompletionResultType]::ParameterName, 'Bootstrap even when some control planes cannot be asked about etcd. RISK: if one of them already runs etcd, this creates a second etcd cluster (a split cluster that needs a reset to repair). Use it only for control planes known to be wiped or gone for good')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace the --kubeconfig file if it holds another cluster''s kubeconfig (the same cluster''s is kept without it; only a regular file is ever replaced)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;discover' {
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Timeout of one TCP connect in the scan')
            [CompletionResult]::new('--window', '--window', [CompletionResultType]::ParameterName, 'Connects in flight at once [default: sized from the open-file limit]')
            [CompletionResult]::new('--talosconfig', '--talosconfig', [CompletionResultType]::ParameterName, 'talosconfig to read nodes configured by its CA (version, role, boot time, etcd) [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config, if one exists]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'talosconfig context [default: the file''s current context]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('--allow-large-scan', '--allow-large-scan', [CompletionResultType]::ParameterName, 'Allow ranges larger than /16')
            [CompletionResult]::new('--skeleton', '--skeleton', [CompletionResultType]::ParameterName, 'Print a talconfig.yaml `nodes:` list for the maintenance-mode nodes found: stdout carries only that YAML (the table goes to stderr), so `> nodes.yaml` works; with -o json it is the report''s details.skeleton')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;sim' {
            [CompletionResult]::new('--control-planes', '--control-planes', [CompletionResultType]::ParameterName, 'Simulated control planes (cp1, cp2, …)')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'Simulated workers (w1, w2, …)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Where to write the throwaway cluster: talconfig.yaml and clusterconfig/ [default: a new directory under the temp dir]')
            [CompletionResult]::new('--subnet', '--subnet', [CompletionResultType]::ParameterName, 'Loopback range for the nodes, a /16 to /24 inside 127.0.0.0/8, e.g. 127.0.42.0/24 [default: random 127.x.y.0/24]')
            [CompletionResult]::new('--scenario', '--scenario', [CompletionResultType]::ParameterName, 'Scenario file (YAML) with faults, timings and disks per node')
            [CompletionResult]::new('--time-scale', '--time-scale', [CompletionResultType]::ParameterName, 'Multiply every simulated duration (1: a few seconds per install or reboot; 0.1: ten times faster)')
            [CompletionResult]::new('--talos-version', '--talos-version', [CompletionResultType]::ParameterName, 'Talos release to simulate: 1.12, 1.13 or 1.14 (or a full tag such as v1.13.3); nodes can differ per scenario (`talos_version` per node)')
            [CompletionResult]::new('--layout', '--layout', [CompletionResultType]::ParameterName, 'Files to write: talhelper''s (talconfig.yaml, clusterconfig/) or topf''s (topf.yaml, `topf render` output in rendered/, talosconfig)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;demo' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Where to leave the cluster files and the kubeconfig [default: a new private directory under the temp dir, removed at the end]')
            [CompletionResult]::new('--talos-version', '--talos-version', [CompletionResultType]::ParameterName, 'Talos release to simulate: 1.12, 1.13 or 1.14 (or a full tag such as v1.13.3); nodes can differ per scenario (`talos_version` per node)')
            [CompletionResult]::new('--time-scale', '--time-scale', [CompletionResultType]::ParameterName, 'Multiply every simulated duration (1: a few seconds per install or reboot; 0.1: ten times faster)')
            [CompletionResult]::new('--control-planes', '--control-planes', [CompletionResultType]::ParameterName, 'Simulated control planes (cp1, cp2, …)')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'Simulated workers (w1, w2, …)')
            [CompletionResult]::new('--scenario', '--scenario', [CompletionResultType]::ParameterName, 'Scenario file (YAML) with faults, to see how failures are reported')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the temp directory (cluster files, keys, kubeconfig) instead of removing it when the demo ends')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;completions' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;man' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;__complete-nodes' {
            [CompletionResult]::new('--talconfig', '--talconfig', [CompletionResultType]::ParameterName, 'talconfig.yaml to read [default: ./talconfig.yaml]')
            [CompletionResult]::new('--topf', '--topf', [CompletionResultType]::ParameterName, '--topf file to read instead')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How results are shown [default: human]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes worked on at the same time (up to 65,536). 16 keep this machine''s cores busy while each node''s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Talos API (apid) port on every node')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v debug, -vv trace); secrets are never logged')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and the final summary')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours (NO_COLOR is honoured too)')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'One node at a time (same as --parallel 1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'talstrap;help' {
            [CompletionResult]::new('preflight', 'preflight', [CompletionResultType]::ParameterValue, 'Check every node before touching it: mode, stage, version, disks')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Send each node its machine config, in parallel and idempotently')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Wait for every node to reach its expected stage; explain stuck ones')
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Bootstrap etcd once, wait for it to be healthy, fetch the kubeconfig')
            [CompletionResult]::new('discover', 'discover', [CompletionResultType]::ParameterValue, 'Find Talos nodes in address ranges and tell what state each is in')
            [CompletionResult]::new('sim', 'sim', [CompletionResultType]::ParameterValue, 'Run a simulated Talos cluster on loopback until Ctrl-C')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Run every step against a simulated cluster on loopback: start here')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, powershell, elvish)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): talstrap''s, or one subcommand''s')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'talstrap;help;preflight' {
            break
        }
        'talstrap;help;apply' {
            break
        }
        'talstrap;help;verify' {
            break
        }
        'talstrap;help;bootstrap' {
            break
        }
        'talstrap;help;discover' {
            break
        }
        'talstrap;help;sim' {
            break
        }
        'talstrap;help;demo' {
            break
        }
        'talstrap;help;completions' {
            break
        }
        'talstrap;help;man' {
            break
        }
        'talstrap;help;__complete-nodes' {
            break
        }
        'talstrap;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
