package frontend

import (
	"net/http"

	"github.com/ignis-run/ignis/internal/api"
)

// tagResource is TagResource: POST /2017-03-31/tags/{arn} → 204.
func (f *Frontend) tagResource(w http.ResponseWriter, r *http.Request) error {
	var req api.TagResourceRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	if err := f.reg.TagResource(r.Context(), r.PathValue("arn"), req.Tags); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listTags is ListTags: GET /2017-03-31/tags/{arn}.
func (f *Frontend) listTags(w http.ResponseWriter, r *http.Request) error {
	tags, err := f.reg.ListTags(r.Context(), r.PathValue("arn"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.ListTagsResponse{Tags: tags})
	return nil
}

// untagResource is UntagResource: DELETE /2017-03-31/tags/{arn}?tagKeys=… → 204.
func (f *Frontend) untagResource(w http.ResponseWriter, r *http.Request) error {
	if err := f.reg.UntagResource(r.Context(), r.PathValue("arn"), r.URL.Query()["tagKeys"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
