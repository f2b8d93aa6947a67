/* ui.c - the web dashboard: GET / is its page, GET /dashboard/{file} the
 * script and style sheet it loads. The files live in src/http/ui/ and are
 * compiled in (ui_gen.c, made by tools/embed_ui.py), so the binary serves
 * them with nothing on disk. The page polls the management API with the
 * browser's Basic credentials (the same 401 prompt as the API). Runs on
 * the loop thread.
 */
#include <string.h>

#include "http_int.h"

static const sb_http_ui_file *
find_file(sb_str name)
{
    for (size_t i = 0; i < sb_http__ui_nfiles; i++)
        if (sb_str_eq_c(name, sb_http__ui_files[i].name))
            return &sb_http__ui_files[i];
    return NULL;
}

void
sb_http__ui(sb_http_req *r)
{
    const sb_http_ui_file *f = find_file(r->nparams == 0 ? SB_STR_LIT("index.html") : r->params[0]);
    struct MHD_Response *resp;

    if (f == NULL) {
        sb_http__reply_not_found(r);
        return;
    }
    resp = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; frame-ancestors 'none'");
    }
    sb_http__reply_response(r, MHD_HTTP_OK, resp);
}
