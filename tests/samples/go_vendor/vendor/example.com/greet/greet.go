// Package greet is a module that exists only here, in vendor/: a build that tried to
// download it would fail, so a build that succeeds used the vendored copy.
package greet

func Hello() string { return "hello from a vendored module" }
