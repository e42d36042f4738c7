package frontend

import (
	"net/http"

	"github.com/ignis-run/ignis/internal/api"
)

// putConcurrency is PutFunctionConcurrency: PUT /2017-10-31/…/concurrency.
func (f *Frontend) putConcurrency(w http.ResponseWriter, r *http.Request) error {
	var req api.PutFunctionConcurrencyRequest
	if err := decodeBody(body(r), &req); err != nil {
		return err
	}
	if req.ReservedConcurrentExecutions == nil {
		return invalidParam("1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
	}
	if err := f.reg.PutFunctionConcurrency(r.Context(), r.PathValue("name"), *req.ReservedConcurrentExecutions); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Concurrency{ReservedConcurrentExecutions: req.ReservedConcurrentExecutions})
	return nil
}

// getConcurrency is GetFunctionConcurrency: GET /2019-09-30/…/concurrency.
func (f *Frontend) getConcurrency(w http.ResponseWriter, r *http.Request) error {
	n, err := f.reg.GetFunctionConcurrency(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Concurrency{ReservedConcurrentExecutions: n})
	return nil
}

// deleteConcurrency is DeleteFunctionConcurrency → 204.
func (f *Frontend) deleteConcurrency(w http.ResponseWriter, r *http.Request) error {
	if err := f.reg.DeleteFunctionConcurrency(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
