# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_talstrap_global_optspecs
    string join \n o/output= v/verbose q/quiet no-color timeout= parallel= serial port= e/endpoints= i/insecure h/help V/version
end

function __fish_talstrap_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_talstrap_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_talstrap_using_subcommand
    set -l cmd (__fish_talstrap_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c talstrap -n "__fish_talstrap_needs_command" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_needs_command" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_needs_command" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_needs_command" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_needs_command" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_needs_command" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_needs_command" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_needs_command" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_needs_command" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "preflight" -d 'Check every node before touching it: mode, stage, version, disks'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "apply" -d 'Send each node its machine config, in parallel and idempotently'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "verify" -d 'Wait for every node to reach its expected stage; explain stuck ones'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "bootstrap" -d 'Bootstrap etcd once, wait for it to be healthy, fetch the kubeconfig'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "discover" -d 'Find Talos nodes in address ranges and tell what state each is in'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "sim" -d 'Run a simulated Talos cluster on loopback until Ctrl-C'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "demo" -d 'Run every step against a simulated cluster on loopback: start here'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, powershell, elvish)'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "man" -d 'Print a man page (roff): talstrap\'s, or one subcommand\'s'
complete -c talstrap -n "__fish_talstrap_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l talconfig -d 'talhelper\'s talconfig.yaml [default: ./talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l config-dir -d 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l topf -d 'topf\'s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l env-file -d 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l node -d 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l role -d 'Work only on nodes of this role' -r -f -a "controlplane\t''
worker\t''"
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l talosconfig -d 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l context -d 'talosconfig context [default: the file\'s current context]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l cert-fingerprint -d 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l connect-timeout -d 'Timeout of one TCP connect' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l rpc-timeout -d 'Timeout of one API call (one attempt)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l attempts -d 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l retry-delay -d 'First retry delay; it doubles each attempt, with jitter, up to 30s' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l poll-interval -d 'How often a node\'s state is read when it cannot be watched' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l server-dry-run -d 'Also have each maintenance-mode node validate its config (a dry-run apply that the node does not keep)'
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand preflight" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -s m -l mode -d 'Apply mode for nodes already configured (a node in maintenance mode always gets auto)' -r -f -a "auto\t'Apply live when possible, reboot when the change needs it'
no-reboot\t'Apply live; refused when the change needs a reboot'
reboot\t'Apply, then reboot'
staged\t'Store the config; it takes effect at the next reboot'
try\t'Apply live, and roll back after --try-timeout unless applied again'"
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l try-timeout -d 'With --mode try: how long the new config stays before Talos rolls it back' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l max-unavailable -d 'On a bootstrapped cluster, how many workers a change that reboots them may take down at once (control planes always go one at a time). 1 by default: talstrap does not drain nodes or read PodDisruptionBudgets, so rebooting more workers together can take every replica of a workload down; raise it for large pools' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l stuck-after -d 'With --wait: a node whose stage and unmet conditions stay unchanged this long is reported stuck' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l talconfig -d 'talhelper\'s talconfig.yaml [default: ./talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l config-dir -d 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l topf -d 'topf\'s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l env-file -d 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l node -d 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l role -d 'Work only on nodes of this role' -r -f -a "controlplane\t''
worker\t''"
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l talosconfig -d 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l context -d 'talosconfig context [default: the file\'s current context]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l cert-fingerprint -d 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l connect-timeout -d 'Timeout of one TCP connect' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l rpc-timeout -d 'Timeout of one API call (one attempt)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l attempts -d 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l retry-delay -d 'First retry delay; it doubles each attempt, with jitter, up to 30s' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l poll-interval -d 'How often a node\'s state is read when it cannot be watched' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l dry-run -d 'Show per node what would change; change nothing'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l wait -d 'Then wait for the nodes as `talstrap verify` does'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l allow-degraded-etcd -d 'Start a rollout that reboots nodes even though etcd is already degraded (a control plane down, unhealthy or missing from the member list). Risky: rebooting another control plane of a degraded cluster can lose etcd quorum, and the Kubernetes API with it, until both are back'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand apply" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l phase -d 'State to wait for' -r -f -a "auto\t'Decide from the cluster: etcd found → post-bootstrap, else pre-bootstrap'
pre-bootstrap\t'Control planes booting with only etcd missing; workers waiting for the control plane'
post-bootstrap\t'Every node running and ready'"
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l stuck-after -d 'A node whose stage and unmet conditions stay unchanged this long is reported stuck' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l talconfig -d 'talhelper\'s talconfig.yaml [default: ./talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l config-dir -d 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l topf -d 'topf\'s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l env-file -d 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l node -d 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l role -d 'Work only on nodes of this role' -r -f -a "controlplane\t''
worker\t''"
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l talosconfig -d 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l context -d 'talosconfig context [default: the file\'s current context]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l cert-fingerprint -d 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l connect-timeout -d 'Timeout of one TCP connect' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l rpc-timeout -d 'Timeout of one API call (one attempt)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l attempts -d 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l retry-delay -d 'First retry delay; it doubles each attempt, with jitter, up to 30s' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l poll-interval -d 'How often a node\'s state is read when it cannot be watched' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand verify" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l cidr -d 'With --auto: find the candidates by scanning these ranges instead of reading talconfig.yaml (repeatable, or comma-separated)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l quorum -d 'With --auto: control planes that must be present before electing [default: every control plane in talconfig.yaml; required with --cidr]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l etcd-timeout -d 'How long etcd may take to become healthy after the bootstrap' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l kubeconfig -d 'Write the admin kubeconfig to this file (atomically, mode 0600) [default: not fetched]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l resend-after -d 'After a Bootstrap request that may have been accepted, send no other for this long' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l talconfig -d 'talhelper\'s talconfig.yaml [default: ./talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l config-dir -d 'Machine configs written by `talhelper genconfig` [default: clusterconfig/ next to talconfig.yaml], or by `topf render -o DIR` with --topf [default: output/ next to topf.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l topf -d 'topf\'s topf.yaml instead of talconfig.yaml: nodes (host, ip, role) from it, their configs from `topf render` output (--config-dir)' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l env-file -d 'talenv file with values for ${VAR} in talconfig.yaml; *.sops.yaml files are decrypted with `sops -d` (repeatable; replaces the defaults) [default: talenv.yaml, talenv.sops.yaml, talenv.yml, talenv.sops.yml, in the current directory and next to talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l node -d 'A node without talconfig.yaml: its address and machine config; FILE may be `-` (stdin) or a pipe such as <(sops -d cp.yaml) (repeatable)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l role -d 'Work only on nodes of this role' -r -f -a "controlplane\t''
worker\t''"
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l talosconfig -d 'talosconfig with the admin client certificate [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l context -d 'talosconfig context [default: the file\'s current context]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l cert-fingerprint -d 'Pin maintenance-mode nodes: the SPKI SHA-256 fingerprint a node must present, as its console prints it (repeatable). Pins go stale: Talos re-issues the certificate with a new key at every boot, on address, hostname or time changes, and every 12 h [default: not checked, like talosctl --insecure]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l connect-timeout -d 'Timeout of one TCP connect' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l rpc-timeout -d 'Timeout of one API call (one attempt)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l attempts -d 'Attempts per step on transient errors (unavailable, refused, reset, timed out); other errors are never retried' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l retry-delay -d 'First retry delay; it doubles each attempt, with jitter, up to 30s' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l poll-interval -d 'How often a node\'s state is read when it cannot be watched' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l auto -d 'Elect the target among the control planes (oldest boot time, then lowest IP) instead of taking the first one'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l wait-members -d 'Also wait until every control plane has joined etcd'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l allow-unreachable-control-planes -d 'Bootstrap even when some control planes cannot be asked about etcd. RISK: if one of them already runs etcd, this creates a second etcd cluster (a split cluster that needs a reset to repair). Use it only for control planes known to be wiped or gone for good'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l force -d 'Replace the --kubeconfig file if it holds another cluster\'s kubeconfig (the same cluster\'s is kept without it; only a regular file is ever replaced)'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand bootstrap" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l connect-timeout -d 'Timeout of one TCP connect in the scan' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l window -d 'Connects in flight at once [default: sized from the open-file limit]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l talosconfig -d 'talosconfig to read nodes configured by its CA (version, role, boot time, etcd) [default: $TALOSCONFIG, else clusterconfig/talosconfig, else $TALOS_HOME/config or ~/.talos/config, if one exists]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l context -d 'talosconfig context [default: the file\'s current context]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l allow-large-scan -d 'Allow ranges larger than /16'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l skeleton -d 'Print a talconfig.yaml `nodes:` list for the maintenance-mode nodes found: stdout carries only that YAML (the table goes to stderr), so `> nodes.yaml` works; with -o json it is the report\'s details.skeleton'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand discover" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l control-planes -d 'Simulated control planes (cp1, cp2, …)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l workers -d 'Simulated workers (w1, w2, …)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l dir -d 'Where to write the throwaway cluster: talconfig.yaml and clusterconfig/ [default: a new directory under the temp dir]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l subnet -d 'Loopback range for the nodes, a /16 to /24 inside 127.0.0.0/8, e.g. 127.0.42.0/24 [default: random 127.x.y.0/24]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l scenario -d 'Scenario file (YAML) with faults, timings and disks per node' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l time-scale -d 'Multiply every simulated duration (1: a few seconds per install or reboot; 0.1: ten times faster)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l talos-version -d 'Talos release to simulate: 1.12, 1.13 or 1.14 (or a full tag such as v1.13.3); nodes can differ per scenario (`talos_version` per node)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l layout -d 'Files to write: talhelper\'s (talconfig.yaml, clusterconfig/) or topf\'s (topf.yaml, `topf render` output in rendered/, talosconfig)' -r -f -a "talhelper\t'talconfig.yaml and clusterconfig/ (as `talhelper genconfig` writes)'
topf\t'topf.yaml, rendered/<host>.yaml (as `topf render -o rendered`) and talosconfig'"
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand sim" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l dir -d 'Where to leave the cluster files and the kubeconfig [default: a new private directory under the temp dir, removed at the end]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l talos-version -d 'Talos release to simulate: 1.12, 1.13 or 1.14 (or a full tag such as v1.13.3); nodes can differ per scenario (`talos_version` per node)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l time-scale -d 'Multiply every simulated duration (1: a few seconds per install or reboot; 0.1: ten times faster)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l control-planes -d 'Simulated control planes (cp1, cp2, …)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l workers -d 'Simulated workers (w1, w2, …)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l scenario -d 'Scenario file (YAML) with faults, to see how failures are reported' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l keep -d 'Keep the temp directory (cluster files, keys, kubeconfig) instead of removing it when the demo ends'
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand demo" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand completions" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand man" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -l talconfig -d 'talconfig.yaml to read [default: ./talconfig.yaml]' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -l topf -d '--topf file to read instead' -r -F
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -s o -l output -d 'How results are shown [default: human]' -r -f -a "human\t'Progress and a summary table; plain lines when stdout is not a terminal'
json\t'One JSON object per line on stdout: events, then the final report'"
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -l timeout -d 'Deadline for the whole command, e.g. 90s, 10m, 1h30m [default: none]' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -l parallel -d 'Nodes worked on at the same time (up to 65,536). 16 keep this machine\'s cores busy while each node\'s part is a few milliseconds of TLS and a reply; raise it for large fleets whose nodes answer slowly (each node in flight holds a connection and its buffers)' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -l port -d 'Talos API (apid) port on every node' -r
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); secrets are never logged'
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -s q -l quiet -d 'Print only errors and the final summary'
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -l no-color -d 'No colours (NO_COLOR is honoured too)'
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -l serial -d 'One node at a time (same as --parallel 1)'
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c talstrap -n "__fish_talstrap_using_subcommand __complete-nodes" -s V -l version -d 'Print version'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "preflight" -d 'Check every node before touching it: mode, stage, version, disks'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "apply" -d 'Send each node its machine config, in parallel and idempotently'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "verify" -d 'Wait for every node to reach its expected stage; explain stuck ones'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "bootstrap" -d 'Bootstrap etcd once, wait for it to be healthy, fetch the kubeconfig'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "discover" -d 'Find Talos nodes in address ranges and tell what state each is in'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "sim" -d 'Run a simulated Talos cluster on loopback until Ctrl-C'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "demo" -d 'Run every step against a simulated cluster on loopback: start here'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, powershell, elvish)'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "man" -d 'Print a man page (roff): talstrap\'s, or one subcommand\'s'
complete -c talstrap -n "__fish_talstrap_using_subcommand help; and not __fish_seen_subcommand_from preflight apply verify bootstrap discover sim demo completions man __complete-nodes help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c talstrap -s n -l nodes -x -a "(talstrap __complete-nodes (commandline -opc | string match -r -- '^--(?:talconfig|topf)=.*'))"
