package cdkpatterns

import (
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// invalid reports problems found in a construct's props through CDK's
// construct validation: synthesis fails with each message and the
// construct's path. (CDK's own constructs throw, which in Go is a panic;
// a validation error is reported at the same synth, for every construct at
// once, and does not crash the caller.)
func invalid(c constructs.Construct, problems ...string) {
	if len(problems) == 0 {
		return
	}
	c.Node().AddValidation(&problemList{problems})
}

// problemList implements constructs.IValidation.
type problemList struct{ problems []string }

func (p *problemList) Validate() *[]*string { return jsii.Strings(p.problems...) }
