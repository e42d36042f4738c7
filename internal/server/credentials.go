package server

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CredentialsFile is where a generated key pair is stored under the data dir.
const CredentialsFile = "credentials.json"

// Credentials is an access key pair.
type Credentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// ExportLines are the shell lines that point the AWS CLI and SDKs at them.
func (c Credentials) ExportLines() string {
	return fmt.Sprintf("export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", c.AccessKeyID, c.SecretAccessKey)
}

// LoadCredentials reads the key pair stored under dataDir.
func LoadCredentials(dataDir string) (Credentials, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, CredentialsFile))
	if err != nil {
		return Credentials{}, fmt.Errorf("reading credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("reading credentials: %s is malformed", filepath.Join(dataDir, CredentialsFile))
	}
	return c, nil
}

// loadOrCreateCredentials returns the stored key pair, generating and
// storing one (mode 0600) when none exists; created reports which.
func loadOrCreateCredentials(dataDir string) (c Credentials, created bool, err error) {
	c, err = LoadCredentials(dataDir)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, false, err
	}
	c = Credentials{AccessKeyID: "AKIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Credentials{}, false, fmt.Errorf("creating data dir: %w", err)
	}
	tmp := filepath.Join(dataDir, CredentialsFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return Credentials{}, false, fmt.Errorf("storing credentials: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dataDir, CredentialsFile)); err != nil {
		return Credentials{}, false, fmt.Errorf("storing credentials: %w", err)
	}
	return c, true, nil
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
