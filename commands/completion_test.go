package commands

import "testing"

func TestCompletionOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		o    completionOptions
		want string
	}{
		{"bash", completionOptions{args: []string{"bash"}}, ""},
		{"zsh", completionOptions{args: []string{"zsh"}}, ""},
		{"no shell", completionOptions{}, "completion takes bash or zsh"},
		{"fish", completionOptions{args: []string{"fish"}}, "completion takes bash or zsh"},
		{"two shells", completionOptions{args: []string{"bash", "zsh"}}, `unexpected argument "zsh"; completion takes one shell, bash or zsh`},
	}
	for _, c := range cases {
		checkValidation(t, c.name, &c.o, (*completionOptions).validate, c.want)
	}
}
