// Command buildlambdas is `make lambdas`: it builds every function
// lambdas/contract lists as the `bootstrap` executable of the
// provided.al2023 runtime on arm64 (static, -tags lambda.norpc), zips each
// into <out>/<name>.zip for infra/ to use as an asset, and checks what it
// built: an ELF for aarch64 with no interpreter (static), whose build info
// says linux/arm64, CGO_ENABLED=0 and lambda.norpc.
//
//	go run ./lambdas/internal/cmd/buildlambdas [-out dist/lambdas] [-arch arm64|amd64|host] [name ...]
//
// -arch amd64 (x86_64) or host builds for LocalStack's runtime executor,
// which runs functions as processes of the host (infra/scripts/deploy-local.sh).
//
// The zips are reproducible (fixed file time and mode, -trimpath), so an
// unchanged function keeps its asset hash and is not redeployed.
package main

import (
	"archive/zip"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/courier-aws/courier/lambdas/contract"
)

func main() {
	out := flag.String("out", "dist/lambdas", "output directory")
	arch := flag.String("arch", "arm64", "GOARCH: arm64 (AWS), amd64, or host (this machine's)")
	flag.Parse()
	if *arch == "host" {
		*arch = runtime.GOARCH
	}
	if _, ok := machines[*arch]; !ok {
		fail(fmt.Errorf("-arch %s: want arm64, amd64 or host", *arch))
	}
	var names []string
	for _, f := range contract.Functions() {
		if flag.NArg() == 0 || slices.Contains(flag.Args(), f.Name) {
			names = append(names, f.Name)
		}
	}
	if len(names) == 0 {
		fail(fmt.Errorf("no function named %v in lambdas/contract", flag.Args()))
	}
	for _, name := range names {
		if err := build(*out, name, *arch); err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "buildlambdas:", err)
	os.Exit(1)
}

// machines: the ELF machine of each GOARCH a Lambda function can have.
var machines = map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64}

func build(out, name, arch string) error {
	bin := filepath.Join(out, name, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", bin, "./lambdas/"+name)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	if err := check(bin, arch); err != nil {
		return err
	}
	zipPath := filepath.Join(out, name+".zip")
	if err := zipBootstrap(bin, zipPath); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "built %s (linux/%s, static, lambda.norpc)\n", zipPath, arch)
	return nil
}

// check verifies what `file` and `go version -m` would show.
func check(bin, arch string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Machine != machines[arch] || f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("%s is %v %v, want 64-bit %v", bin, f.Class, f.Machine, machines[arch])
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s is dynamically linked", bin)
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return err
	}
	want := map[string]string{"GOOS": "linux", "GOARCH": arch, "CGO_ENABLED": "0", "-tags": "lambda.norpc", "-trimpath": "true"}
	for _, s := range info.Settings {
		if v, ok := want[s.Key]; ok && v == s.Value {
			delete(want, s.Key)
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("%s: build settings missing %v", bin, want)
	}
	return nil
}

// zipBootstrap writes a zip holding bin as an executable `bootstrap`, with
// a fixed time so that the same binary gives the same zip.
func zipBootstrap(bin, zipPath string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(zipPath, buf.Bytes(), 0o644)
}
