package frontend

// routes registers every operation (spec §1.3). Note the different date
// prefixes, and that clients send some collection paths with a trailing
// slash, so both spellings are registered.
func (f *Frontend) routes() {
	m := f.mux
	h := f.handler

	for _, p := range []string{"/2015-03-31/functions", "/2015-03-31/functions/{$}"} {
		m.Handle("POST "+p, h(f.createFunction))
		m.Handle("GET "+p, h(f.listFunctions))
	}
	m.Handle("GET /2015-03-31/functions/{name}", h(f.getFunction))
	m.Handle("DELETE /2015-03-31/functions/{name}", h(f.deleteFunction))
	m.Handle("GET /2015-03-31/functions/{name}/configuration", h(f.getFunctionConfiguration))
	m.Handle("PUT /2015-03-31/functions/{name}/configuration", h(f.updateFunctionConfiguration))
	m.Handle("PUT /2015-03-31/functions/{name}/code", h(f.updateFunctionCode))

	m.Handle("POST /2015-03-31/functions/{name}/versions", h(f.publishVersion))
	m.Handle("GET /2015-03-31/functions/{name}/versions", h(f.listVersions))

	m.Handle("POST /2015-03-31/functions/{name}/aliases", h(f.createAlias))
	m.Handle("GET /2015-03-31/functions/{name}/aliases", h(f.listAliases))
	m.Handle("GET /2015-03-31/functions/{name}/aliases/{alias}", h(f.getAlias))
	m.Handle("PUT /2015-03-31/functions/{name}/aliases/{alias}", h(f.updateAlias))
	m.Handle("DELETE /2015-03-31/functions/{name}/aliases/{alias}", h(f.deleteAlias))

	m.Handle("PUT /2017-10-31/functions/{name}/concurrency", h(f.putConcurrency))
	m.Handle("GET /2019-09-30/functions/{name}/concurrency", h(f.getConcurrency))
	m.Handle("DELETE /2017-10-31/functions/{name}/concurrency", h(f.deleteConcurrency))

	for _, p := range []string{"/2016-08-19/account-settings", "/2016-08-19/account-settings/{$}"} {
		m.Handle("GET "+p, h(f.getAccountSettings))
	}

	m.Handle("POST /2017-03-31/tags/{arn}", h(f.tagResource))
	m.Handle("GET /2017-03-31/tags/{arn}", h(f.listTags))
	m.Handle("DELETE /2017-03-31/tags/{arn}", h(f.untagResource))

	m.Handle("POST /2015-03-31/functions/{name}/invocations", h(f.invoke))
	f.asyncRoutes()
	f.urlConfigRoutes()

	m.Handle("POST /{$}", h(f.logs))
	m.Handle("GET "+codePathPrefix+"{key}", h(f.downloadCode))

	m.Handle("/", h(f.unknownOperation))
}
