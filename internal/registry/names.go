package registry

import (
	"regexp"
	"strings"
)

// Qualifier values and name patterns (spec §1.2).
const (
	// Latest is the qualifier of the unpublished, mutable version.
	Latest = "$LATEST"

	maxFunctionRefLen = 256
)

var (
	functionNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	aliasNameRE    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	versionRE      = regexp.MustCompile(`^[0-9]{1,10}$`)
	accountRE      = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE       = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
)

// FunctionRef is a parsed function identifier: a name plus an optional
// qualifier ($LATEST, a version number or an alias name).
type FunctionRef struct {
	Name      string
	Qualifier string
}

// ParseFunctionRef accepts every form Lambda accepts for FunctionName:
//
//	NAME, NAME:QUALIFIER
//	ACCOUNT:function:NAME[:QUALIFIER]
//	arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
//
// and, when qualifier is non-empty, merges it with a qualifier in the name
// (both given and different is an error).
func ParseFunctionRef(s, qualifier string) (FunctionRef, error) {
	if s == "" {
		return FunctionRef{}, invalidf("1 validation error detected: Value at 'functionName' failed to satisfy constraint: Member must not be null")
	}
	if len(s) > maxFunctionRefLen {
		return FunctionRef{}, invalidf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 140", truncate(s, 160))
	}
	parts := strings.Split(s, ":")
	var ref FunctionRef
	switch {
	case len(parts) <= 2:
		ref.Name = parts[0]
		if len(parts) == 2 {
			ref.Qualifier = parts[1]
		}
	case (len(parts) == 3 || len(parts) == 4) && parts[1] == "function":
		if !accountRE.MatchString(parts[0]) {
			return FunctionRef{}, badFunctionName(s)
		}
		ref.Name = parts[2]
		if len(parts) == 4 {
			ref.Qualifier = parts[3]
		}
	case (len(parts) == 7 || len(parts) == 8) && parts[0] == "arn" && strings.HasPrefix(parts[1], "aws") && parts[2] == "lambda" && parts[5] == "function":
		if !regionRE.MatchString(parts[3]) || !accountRE.MatchString(parts[4]) {
			return FunctionRef{}, badFunctionName(s)
		}
		ref.Name = parts[6]
		if len(parts) == 8 {
			ref.Qualifier = parts[7]
		}
	default:
		return FunctionRef{}, badFunctionName(s)
	}
	if !functionNameRE.MatchString(ref.Name) {
		return FunctionRef{}, badFunctionName(s)
	}
	if len(parts) == 2 || len(parts) == 4 || len(parts) == 8 {
		if ref.Qualifier == "" {
			return FunctionRef{}, badFunctionName(s)
		}
	}
	if qualifier != "" {
		if ref.Qualifier != "" && ref.Qualifier != qualifier {
			return FunctionRef{}, invalidf("The derived qualifier from the function name does not match the specified qualifier.")
		}
		ref.Qualifier = qualifier
	}
	if ref.Qualifier != "" {
		if err := validateQualifier(ref.Qualifier); err != nil {
			return FunctionRef{}, err
		}
	}
	return ref, nil
}

func badFunctionName(s string) error {
	return invalidf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?", truncate(s, 160))
}

func validateQualifier(q string) error {
	if q == Latest || versionRE.MatchString(q) || aliasNameRE.MatchString(q) {
		return nil
	}
	return invalidf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)", truncate(q, 160))
}

// validateAliasName reports whether name may name an alias: the name
// pattern, and not all digits (that would be a version).
func validateAliasName(name string) error {
	if !aliasNameRE.MatchString(name) || versionRE.MatchString(name) || strings.Trim(name, "0123456789") == "" {
		return invalidf("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)", truncate(name, 160))
	}
	return nil
}

// isVersion reports whether q is a published version number.
func isVersion(q string) bool { return versionRE.MatchString(q) }

// ARNs builds the ARNs of one region and account.
type ARNs struct {
	Region    string
	AccountID string
}

// Function returns the unqualified function ARN.
func (a ARNs) Function(name string) string {
	return "arn:aws:lambda:" + a.Region + ":" + a.AccountID + ":function:" + name
}

// Qualified returns the function ARN with ":qualifier", or the unqualified
// ARN when qualifier is empty.
func (a ARNs) Qualified(name, qualifier string) string {
	if qualifier == "" {
		return a.Function(name)
	}
	return a.Function(name) + ":" + qualifier
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
