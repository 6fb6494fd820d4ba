// The 8-bit library: pcre2.h then declares pcre2_compile_8, pcre2_match_8 and the rest.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
