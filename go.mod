module github.com/courier-aws/courier

go 1.24
