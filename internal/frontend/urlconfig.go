package frontend

// Function URL configuration operations (spec §1.3/§1.4):
//
//	POST   /2021-10-31/functions/{name}/url?Qualifier=  CreateFunctionUrlConfig → 201
//	GET    /2021-10-31/functions/{name}/url?Qualifier=  GetFunctionUrlConfig
//	PUT    /2021-10-31/functions/{name}/url?Qualifier=  UpdateFunctionUrlConfig
//	DELETE /2021-10-31/functions/{name}/url?Qualifier=  DeleteFunctionUrlConfig → 204
//	GET    /2021-10-31/functions/{name}/urls?Marker=&MaxItems=  ListFunctionUrlConfigs
//
// Serving the URLs themselves is urlserve.go.

import (
	"net"
	"net/http"
	"slices"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/registry"
)

// urlTimeFormat is how function URL configs write CreationTime and
// LastModifiedTime (ISO-8601 with microseconds, as Lambda does).
const urlTimeFormat = "2006-01-02T15:04:05.000000Z"

// functionURL is the FunctionUrl of the URL with id. The port is that of
// the listener serving function URLs (Config.FunctionURLPort), else the
// one this request came in on.
func (f *Frontend) functionURL(r *http.Request, id string) string {
	port := f.cfg.FunctionURLPort
	if port == "" {
		if _, p, err := net.SplitHostPort(r.Host); err == nil {
			port = p
		}
	}
	host := id + ".lambda-url." + f.arns.Region + ".localhost"
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	return "http://" + host + "/"
}

func (f *Frontend) functionURLConfig(r *http.Request, c *registry.URLConfig, withModified bool) api.FunctionUrlConfig {
	out := api.FunctionUrlConfig{
		FunctionUrl:  f.functionURL(r, c.URLID),
		FunctionArn:  f.reg.URLFunctionArn(c),
		AuthType:     c.AuthType,
		CreationTime: c.Created.UTC().Format(urlTimeFormat),
		InvokeMode:   c.InvokeMode,
	}
	if withModified {
		out.LastModifiedTime = c.Modified.UTC().Format(urlTimeFormat)
	}
	if c.Cors != nil {
		out.Cors = &api.FunctionUrlCors{
			AllowCredentials: c.Cors.AllowCredentials,
			AllowHeaders:     slices.Clone(c.Cors.AllowHeaders),
			AllowMethods:     slices.Clone(c.Cors.AllowMethods),
			AllowOrigins:     slices.Clone(c.Cors.AllowOrigins),
			ExposeHeaders:    slices.Clone(c.Cors.ExposeHeaders),
			MaxAge:           c.Cors.MaxAge,
		}
	}
	return out
}

func urlConfigInput(req *api.FunctionUrlConfigRequest) registry.URLConfigInput {
	in := registry.URLConfigInput{AuthType: req.AuthType, InvokeMode: req.InvokeMode}
	if c := req.Cors; c != nil {
		in.Cors = &registry.URLCors{
			AllowCredentials: c.AllowCredentials,
			AllowHeaders:     c.AllowHeaders,
			AllowMethods:     c.AllowMethods,
			AllowOrigins:     c.AllowOrigins,
			ExposeHeaders:    c.ExposeHeaders,
			MaxAge:           c.MaxAge,
		}
	}
	return in
}

// putURLConfig is CreateFunctionUrlConfig (POST → 201, no
// LastModifiedTime) and UpdateFunctionUrlConfig (PUT → 200).
func (f *Frontend) putURLConfig(create bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req api.FunctionUrlConfigRequest
		if err := decodeBody(body(r), &req); err != nil {
			return err
		}
		put, status := f.reg.UpdateFunctionURLConfig, http.StatusOK
		if create {
			put, status = f.reg.CreateFunctionURLConfig, http.StatusCreated
		}
		c, err := put(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"), urlConfigInput(&req))
		if err != nil {
			return err
		}
		writeJSON(w, status, f.functionURLConfig(r, &c, !create))
		return nil
	}
}

// getURLConfig is GetFunctionUrlConfig.
func (f *Frontend) getURLConfig(w http.ResponseWriter, r *http.Request) error {
	c, err := f.reg.GetFunctionURLConfig(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f.functionURLConfig(r, &c, true))
	return nil
}

// deleteURLConfig is DeleteFunctionUrlConfig → 204.
func (f *Frontend) deleteURLConfig(w http.ResponseWriter, r *http.Request) error {
	if err := f.reg.DeleteFunctionURLConfig(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listURLConfigs is ListFunctionUrlConfigs (MaxItems 1–50).
func (f *Frontend) listURLConfigs(w http.ResponseWriter, r *http.Request) error {
	in, err := listInput(r)
	if err != nil {
		return err
	}
	cs, next, err := f.reg.ListFunctionURLConfigs(r.Context(), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	out := api.ListFunctionUrlConfigsResponse{NextMarker: next, FunctionUrlConfigs: make([]api.FunctionUrlConfig, 0, len(cs))}
	for i := range cs {
		out.FunctionUrlConfigs = append(out.FunctionUrlConfigs, f.functionURLConfig(r, &cs[i], true))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// urlConfigRoutes registers the routes of this file.
func (f *Frontend) urlConfigRoutes() {
	m, h := f.mux, f.handler
	const p = "/2021-10-31/functions/{name}/url"
	m.Handle("POST "+p, h(f.putURLConfig(true)))
	m.Handle("GET "+p, h(f.getURLConfig))
	m.Handle("PUT "+p, h(f.putURLConfig(false)))
	m.Handle("DELETE "+p, h(f.deleteURLConfig))
	m.Handle("GET "+p+"s", h(f.listURLConfigs))
}
