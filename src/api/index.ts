/** The call-records HTTP API: request handler, bearer token, query parsing, and a client. */
export { API_PREFIX, createApiHandler, type ApiHandler, type ApiHandlerOptions } from './handler.js';
export { ApiError, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, parseListQuery, parseStatsRange } from './query.js';
export { API_TOKEN_FILE, apiTokenPath, bearerToken, ensureApiToken, generateApiToken, readApiToken, tokensEqual, validateToken, type ResolvedApiToken } from './token.js';
export { ApiClientError, createApiClient, type ApiClientErrorKind, type ApiClientOptions } from './client.js';
