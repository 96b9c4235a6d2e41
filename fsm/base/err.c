#include "err.h"

const char *yh_strerror(int code)
{
    switch (code) {
#define YH__ERR_CASE(name, c, text) \
    case c:                         \
        return text;
        YH_ERR_LIST(YH__ERR_CASE)
#undef YH__ERR_CASE
    }
    return "unknown error";
}

int yh_err_is_result(int code)
{
    return code >= 0 && code < 500;
}
