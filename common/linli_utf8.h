//  linli_utf8: one UTF-8 decoder for every check of text the suite takes in
//  or gives out (the codec, the CSV reader, the gateway's error texts).
#ifndef LINLI_UTF8_H
#define LINLI_UTF8_H

#include <stddef.h>
#include <stdint.h>

//  Length of the valid UTF-8 sequence starting at p (n > 0 bytes left), as
//  jansson checks it: no overlong forms, surrogates or code points beyond
//  U+10FFFF; 0 when invalid. *cp gets the code point.
size_t linli_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp);

//  Count the characters of len bytes of s: 0 with *chars set when they are
//  valid UTF-8 as linli_utf8_seq checks it, -1 (*chars untouched) when not.
//  NUL and control characters are characters here; callers refuse them
//  themselves if they must.
int linli_utf8_count(const char *s, size_t len, size_t *chars);

#endif
