package cli

// checkCompletion validates --completion.
func checkCompletion(shell string) error {
	switch shell {
	case "bash", "zsh", "fish":
		return nil
	}
	return usageErrorf("invalid --completion %q: must be bash, zsh or fish", shell)
}
