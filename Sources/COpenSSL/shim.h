// OpenSSL 3 headers plus static inline wrappers for the macros and variadic functions that Swift
// cannot call directly. Each wrapper is named after the macro it wraps, with a `CShim_` prefix.
#ifndef POMERIUM_COPENSSL_SHIM_H
#define POMERIUM_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/opensslv.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl.
static inline long CShim_SSL_CTX_set_min_proto_version(SSL_CTX *_Nonnull ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}

// SSL_CTX_set_mode is a macro over SSL_CTX_ctrl.
static inline long CShim_SSL_CTX_set_mode(SSL_CTX *_Nonnull ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

// SSL_CTX_set_session_cache_mode is a macro over SSL_CTX_ctrl.
static inline long CShim_SSL_CTX_set_session_cache_mode(SSL_CTX *_Nonnull ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

// SSL_CTX_set_tlsext_servername_callback is a macro over SSL_CTX_callback_ctrl.
static inline long CShim_SSL_CTX_set_tlsext_servername_callback(
    SSL_CTX *_Nonnull ctx, int (*_Nullable callback)(SSL *_Nonnull, int *_Nonnull, void *_Nullable)) {
    return SSL_CTX_set_tlsext_servername_callback(ctx, callback);
}

// SSL_CTX_set_tlsext_servername_arg is a macro over SSL_CTX_ctrl.
static inline long CShim_SSL_CTX_set_tlsext_servername_arg(SSL_CTX *_Nonnull ctx, void *_Nullable arg) {
    return SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}

// SSL_set_tlsext_host_name is a macro over SSL_ctrl.
static inline long CShim_SSL_set_tlsext_host_name(SSL *_Nonnull ssl, const char *_Nonnull name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

// SSL_CTX_set1_groups_list is a macro over SSL_CTX_ctrl.
static inline long CShim_SSL_CTX_set1_groups_list(SSL_CTX *_Nonnull ctx, const char *_Nonnull list) {
    return SSL_CTX_set1_groups_list(ctx, list);
}

// SSL_CTX_add_extra_chain_cert is a macro over SSL_CTX_ctrl.
static inline long CShim_SSL_CTX_add_extra_chain_cert(SSL_CTX *_Nonnull ctx, X509 *_Nonnull cert) {
    return SSL_CTX_add_extra_chain_cert(ctx, cert);
}

// The SSL_OP_* values are macros of a type Swift imports inconsistently across OpenSSL versions.
static inline uint64_t CShim_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t CShim_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t CShim_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t CShim_SSL_OP_IGNORE_UNEXPECTED_EOF(void) { return SSL_OP_IGNORE_UNEXPECTED_EOF; }

// OPENSSL_free is a macro over CRYPTO_free that adds the file and line.
static inline void CShim_OPENSSL_free(void *_Nullable pointer) { OPENSSL_free(pointer); }

// EVP_PKEY_PUBLIC_KEY and EVP_PKEY_KEYPAIR are composed from OSSL_KEYMGMT_SELECT_* macros, which
// Swift does not import.
static inline int CShim_EVP_PKEY_PUBLIC_KEY(void) { return EVP_PKEY_PUBLIC_KEY; }
static inline int CShim_EVP_PKEY_KEYPAIR(void) { return EVP_PKEY_KEYPAIR; }

#endif
