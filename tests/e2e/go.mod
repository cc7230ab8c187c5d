module github.com/merchshop/merchshop/tests/e2e

go 1.26.0
