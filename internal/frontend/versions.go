package frontend

import (
	"net/http"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/registry"
)

// publishVersion is PublishVersion: POST …/versions → 201.
func (f *Frontend) publishVersion(w http.ResponseWriter, r *http.Request) error {
	var req api.PublishVersionRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	c, err := f.reg.PublishVersion(r.Context(), r.PathValue("name"), registry.PublishInput{
		CodeSha256: req.CodeSha256, Description: req.Description, RevisionId: req.RevisionId,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, f.functionConfiguration(&c, arnByVersion))
	return nil
}

// listVersions is ListVersionsByFunction: GET …/versions.
func (f *Frontend) listVersions(w http.ResponseWriter, r *http.Request) error {
	in, err := listInput(r)
	if err != nil {
		return err
	}
	cs, next, err := f.reg.ListVersions(r.Context(), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	out := api.ListVersionsByFunctionResponse{NextMarker: next, Versions: make([]api.FunctionConfiguration, 0, len(cs))}
	for i := range cs {
		out.Versions = append(out.Versions, f.functionConfiguration(&cs[i], arnAlwaysQualified))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
