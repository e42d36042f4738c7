package frontend

import (
	"io"
	"net/http"

	"github.com/ignis-run/ignis/internal/api"
)

func body(r *http.Request) []byte {
	if bb, ok := r.Body.(*bufferedBody); ok {
		return bb.b // ServeHTTP's buffer, not a copy
	}
	b, _ := io.ReadAll(r.Body)
	return b
}

// createFunction is CreateFunction: POST /2015-03-31/functions → 201.
func (f *Frontend) createFunction(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateFunctionRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	if req.Code == nil {
		return invalidParam("1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null")
	}
	c, err := f.reg.CreateFunction(r.Context(), createInput(&req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, f.functionConfiguration(&c, arnByVersion))
	return nil
}

// getFunction is GetFunction: GET /2015-03-31/functions/{name}?Qualifier=.
func (f *Frontend) getFunction(w http.ResponseWriter, r *http.Request) error {
	d, err := f.reg.GetFunction(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	out := api.GetFunctionResponse{
		Configuration: f.functionConfiguration(&d.Config, arnByVersion),
		Code:          api.FunctionCodeLocation{RepositoryType: "S3", Location: f.codeURL(r, d.Config.CodeKey())},
		Tags:          d.Tags,
	}
	if d.ReservedConcurrency != nil {
		out.Concurrency = &api.Concurrency{ReservedConcurrentExecutions: d.ReservedConcurrency}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getFunctionConfiguration is GET …/configuration?Qualifier=.
func (f *Frontend) getFunctionConfiguration(w http.ResponseWriter, r *http.Request) error {
	c, err := f.reg.GetFunctionConfiguration(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f.functionConfiguration(&c, arnByVersion))
	return nil
}

// updateFunctionCode is PUT …/code.
func (f *Frontend) updateFunctionCode(w http.ResponseWriter, r *http.Request) error {
	var req api.UpdateFunctionCodeRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	c, err := f.reg.UpdateFunctionCode(r.Context(), r.PathValue("name"), updateCodeInput(&req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f.functionConfiguration(&c, arnByVersion))
	return nil
}

// updateFunctionConfiguration is PUT …/configuration.
func (f *Frontend) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request) error {
	var req api.UpdateFunctionConfigurationRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	c, err := f.reg.UpdateFunctionConfiguration(r.Context(), r.PathValue("name"), updateConfigInput(&req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f.functionConfiguration(&c, arnByVersion))
	return nil
}

// deleteFunction is DELETE /2015-03-31/functions/{name}?Qualifier= → 204.
func (f *Frontend) deleteFunction(w http.ResponseWriter, r *http.Request) error {
	if err := f.reg.DeleteFunction(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listFunctions is ListFunctions: Marker, MaxItems, FunctionVersion=ALL.
func (f *Frontend) listFunctions(w http.ResponseWriter, r *http.Request) error {
	in, err := listInput(r)
	if err != nil {
		return err
	}
	all := false
	switch v := r.URL.Query().Get("FunctionVersion"); v {
	case "":
	case "ALL":
		all = true
	default:
		return invalidParam("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]", v)
	}
	cs, next, err := f.reg.ListFunctions(r.Context(), in, all)
	if err != nil {
		return err
	}
	out := api.ListFunctionsResponse{NextMarker: next, Functions: make([]api.FunctionConfiguration, 0, len(cs))}
	for i := range cs {
		out.Functions = append(out.Functions, f.functionConfiguration(&cs[i], arnByVersion))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// unknownOperation answers any path no route matches.
func (f *Frontend) unknownOperation(w http.ResponseWriter, r *http.Request) error {
	return newAWSError(http.StatusNotFound, api.ErrUnknownOperation, "Unknown operation %s %s", r.Method, r.URL.Path)
}
