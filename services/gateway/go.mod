module github.com/merchshop/merchshop/services/gateway

go 1.26.0

require (
	github.com/merchshop/merchshop/gen v0.0.0
	github.com/merchshop/merchshop/pkg v0.0.0
)

replace (
	github.com/merchshop/merchshop/gen => ../../gen
	github.com/merchshop/merchshop/pkg => ../../pkg
)
