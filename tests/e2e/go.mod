module github.com/merchshop/merchshop/tests/e2e

go 1.26.0

require golang.org/x/text v0.43.0
