package frontend

import (
	"net/http"

	"github.com/ignis-run/ignis/internal/api"
)

// createAlias is CreateAlias: POST …/aliases → 201.
func (f *Frontend) createAlias(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateAliasRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	if req.Name == "" {
		return invalidParam("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	a, err := f.reg.CreateAlias(r.Context(), r.PathValue("name"), req.Name,
		aliasInput(&req.FunctionVersion, &req.Description, req.RoutingConfig, ""))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, f.aliasConfiguration(&a))
	return nil
}

// getAlias is GetAlias.
func (f *Frontend) getAlias(w http.ResponseWriter, r *http.Request) error {
	a, err := f.reg.GetAlias(r.Context(), r.PathValue("name"), r.PathValue("alias"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f.aliasConfiguration(&a))
	return nil
}

// updateAlias is UpdateAlias: PUT …/aliases/{alias}.
func (f *Frontend) updateAlias(w http.ResponseWriter, r *http.Request) error {
	var req api.UpdateAliasRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	a, err := f.reg.UpdateAlias(r.Context(), r.PathValue("name"), r.PathValue("alias"),
		aliasInput(req.FunctionVersion, req.Description, req.RoutingConfig, req.RevisionId))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f.aliasConfiguration(&a))
	return nil
}

// deleteAlias is DeleteAlias → 204.
func (f *Frontend) deleteAlias(w http.ResponseWriter, r *http.Request) error {
	if err := f.reg.DeleteAlias(r.Context(), r.PathValue("name"), r.PathValue("alias")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listAliases is ListAliases: FunctionVersion, Marker, MaxItems.
func (f *Frontend) listAliases(w http.ResponseWriter, r *http.Request) error {
	in, err := listInput(r)
	if err != nil {
		return err
	}
	as, next, err := f.reg.ListAliases(r.Context(), r.PathValue("name"), r.URL.Query().Get("FunctionVersion"), in)
	if err != nil {
		return err
	}
	out := api.ListAliasesResponse{NextMarker: next, Aliases: make([]api.AliasConfiguration, 0, len(as))}
	for i := range as {
		out.Aliases = append(out.Aliases, f.aliasConfiguration(&as[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
