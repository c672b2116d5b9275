package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

var _ = register(completionCommand)

// bashCompletion asks the binary itself for candidates (urfave/cli's
// --generate-bash-completion), so it never goes stale.
const bashCompletion = `# bash completion for resque-expire
_resque_expire_complete() {
  local cur opts
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  return 0
}
complete -o bashdefault -o default -F _resque_expire_complete resque-expire
`

const zshCompletion = `#compdef resque-expire
_resque_expire() {
  local -a opts
  local cur="${words[-1]}"
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  _describe 'values' opts
}
compdef _resque_expire resque-expire
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Description: `Examples:
  source <(resque-expire completion bash)
  resque-expire completion zsh > "${fpath[1]}/_resque-expire"`,
		// No setup: printing a script needs no Redis, and no global flag
		// can make it fail.
		Action: func(c *cli.Context) error {
			o := completionOptions{args: c.Args().Slice()}
			if err := o.validate(); err != nil {
				return err
			}
			_, err := fmt.Fprint(c.App.Writer, completionScripts[o.args[0]])
			return err
		},
	}
}

// completionScripts are the scripts completion prints, by shell.
var completionScripts = map[string]string{"bash": bashCompletion, "zsh": zshCompletion}

// completionOptions are completion's operands: the shell.
type completionOptions struct{ args []string }

func (o *completionOptions) validate() error {
	if len(o.args) > 1 {
		return usageErrorf("unexpected argument %q; completion takes one shell, bash or zsh", o.args[1])
	}
	if len(o.args) == 0 || completionScripts[o.args[0]] == "" {
		return usageErrorf("completion takes bash or zsh")
	}
	return nil
}
