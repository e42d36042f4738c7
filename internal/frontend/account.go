package frontend

import (
	"net/http"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/registry"
)

// totalCodeStorage is Lambda's default code storage quota (75 GB).
const totalCodeStorage = 80530636800

// getAccountSettings is GetAccountSettings: GET /2016-08-19/account-settings.
func (f *Frontend) getAccountSettings(w http.ResponseWriter, r *http.Request) error {
	s, err := f.reg.AccountSettings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.GetAccountSettingsResponse{
		AccountLimit: api.AccountLimit{
			TotalCodeSize:                  totalCodeStorage,
			CodeSizeUnzipped:               registry.MaxUnzippedSize,
			CodeSizeZipped:                 registry.MaxZipSize,
			ConcurrentExecutions:           s.ConcurrentExecutions,
			UnreservedConcurrentExecutions: s.UnreservedConcurrentExecutions,
		},
		AccountUsage: api.AccountUsage{TotalCodeSize: s.TotalCodeSize, FunctionCount: s.FunctionCount},
	})
	return nil
}
