package cdkpatterns_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/internal/infratest"
)

// wantProblem asserts that the construct at path (under stack) reports a
// validation problem containing want (what cdk synth would print).
func wantProblem(t *testing.T, stack awscdk.Stack, path, want string) {
	t.Helper()
	c := stack.Node().FindChild(jsii.String(path))
	var got []string
	for _, p := range *c.Node().Validate() {
		got = append(got, *p)
	}
	for _, g := range got {
		if strings.Contains(g, want) {
			return
		}
	}
	t.Errorf("%s: problems %q, want one containing %q", path, got, want)
}

// awscdkAssetPlaceholder is code for a function built only to be validated.
func awscdkAssetPlaceholder(t *testing.T) awslambda.Code {
	return awslambda.Code_FromAsset(jsii.String(filepath.Join(infratest.AssetRoot(t), "worker")), nil)
}
