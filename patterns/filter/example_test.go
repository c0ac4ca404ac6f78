package filter_test

import (
	"errors"
	"fmt"

	"github.com/courier-aws/courier/patterns/filter"
)

// The seed's subscriber wants only orange messages.
func Example() {
	p, err := filter.Attrs().Key("color", "orange").Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.JSON())
	fmt.Println(p.MatchAttributes(map[string]filter.Attr{"color": {Type: "String", Value: "orange"}}))
	fmt.Println(p.MatchAttributes(map[string]filter.Attr{"color": {Type: "String", Value: "red"}}))
	// Output:
	// {"color":["orange"]}
	// true
	// false
}

// Policies on the message body may nest; "$or" joins alternatives.
func ExampleBuilder_Or() {
	p, _ := filter.OnBody().
		Key("order.total", filter.Numeric(">=", 100)).
		Or(filter.OnBody().Key("customer.tier", "gold"), filter.OnBody().Key("region", filter.Prefix("eu-"))).
		Build()
	fmt.Println(p.JSON())
	fmt.Println(p.MatchBody([]byte(`{"order":{"total":250},"region":"eu-west-1"}`)))
	fmt.Println(p.MatchBody([]byte(`{"order":{"total":250},"region":"us-east-1"}`)))
	// Output:
	// {"$or":[{"customer":{"tier":["gold"]}},{"region":[{"prefix":"eu-"}]}],"order":{"total":[{"numeric":[">=",100]}]}}
	// true
	// false
}

// Validate refuses what SNS would refuse, naming the key and the rule.
func ExampleParse() {
	_, err := filter.Parse(`{"price":[{"numeric":[">",1.123456]}]}`, filter.Attributes)
	fmt.Println(errors.Is(err, filter.ErrInvalidPolicy))
	fmt.Println(err)
	// Output:
	// true
	// courier: invalid filter policy: key "price": number 1.123456 has more than five digits after the decimal point
}
