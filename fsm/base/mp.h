/* Small helpers over msgpack-c objects: map lookup and lenient parameter
 * readers. Parameters arrive from many clients (the CLI sends every value as
 * a string, SDKs send integers), so integer readers accept a decimal string
 * and string readers accept an integer.
 *
 * All returned pointers borrow from the msgpack zone of @obj. */
#ifndef YH_MP_H
#define YH_MP_H

#include <msgpack.h>
#include <stdint.h>

/* Value for string key @key in map @map, or NULL (also when @map is not a
 * map). */
const msgpack_object *yh_mp_get(const msgpack_object *map, const char *key);

/* 1 if @o is a str or bin equal to @s. */
int yh_mp_eq(const msgpack_object *o, const char *s);

/* String parameter: 0 and *p, *len on success (not NUL-terminated),
 * YH_EMISSING if absent or nil, YH_EINVAL if of another type. Integers are
 * rendered into @scratch (at least 24 bytes) and returned from there. */
/* 1 if any of the @n bytes at @p is a control character (below 0x20 or
 * 0x7f), else 0. Eight bytes at a time. */
int yh_has_ctl(const void *p, size_t n);

int yh_mp_str(const msgpack_object *map,
              const char *key,
              const char **p,
              size_t *len,
              char *scratch);

/* Copy a string parameter into @out (size @size, NUL-terminated).
 * YH_EINVAL if it is longer than size-1 or holds a NUL byte. */
int yh_mp_strcpy(const msgpack_object *map,
                 const char *key,
                 char *out,
                 size_t size);

/* Integer parameter (int, uint or decimal string). YH_EMISSING / YH_EINVAL. */
int yh_mp_int(const msgpack_object *map, const char *key, int64_t *out);

/* Pack helpers over a msgpack_packer. */
void yh_mp_pack_str(msgpack_packer *pk, const char *s);
void yh_mp_pack_strn(msgpack_packer *pk, const char *s, size_t n);
void yh_mp_pack_kv_str(msgpack_packer *pk, const char *k, const char *v);
void yh_mp_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v);

/* Encode @o canonically into @pk: maps with keys sorted bytewise (keys
 * compared by their encoded form), recursively. Used to digest request
 * bodies independently of the client's map order. */
void yh_mp_pack_canonical(msgpack_packer *pk, const msgpack_object *o);

#endif
