/// Keys and certificates made for these tests only with the openssl command line (OpenSSL 3.0).
/// They protect nothing.
enum TestMaterial {
    /// A self-signed P-256 certificate for *.example.test, valid until 2126.
    static let serverCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBpDCCAUqgAwIBAgIUNFZgoA3jLYeXQJkAEGIQYl0O/6kwCgYIKoZIzj0EAwIw
        GTEXMBUGA1UEAwwOKi5leGFtcGxlLnRlc3QwIBcNMjYxMjA0MTcwNDQzWhgPMjEy
        NjExMTAxNzA0NDNaMBkxFzAVBgNVBAMMDiouZXhhbXBsZS50ZXN0MFkwEwYHKoZI
        zj0CAQYIKoZIzj0DAQcDQgAEwK18TJmhw6p4CZlyoU5ZwrGAmL69MmCyYiiIF59K
        ytmWVn+xOInMtPtgRnUS0mme68l6np+xlFNet9/f1gJ4EqNuMGwwHQYDVR0OBBYE
        FLwU+UiVMVRVXuUDKOPU1TTJwIikMB8GA1UdIwQYMBaAFLwU+UiVMVRVXuUDKOPU
        1TTJwIikMA8GA1UdEwEB/wQFMAMBAf8wGQYDVR0RBBIwEIIOKi5leGFtcGxlLnRl
        c3QwCgYIKoZIzj0EAwIDSAAwRQIhAMFaZWVGY2vKTF3YchqCStpHmAe4+e+O7+Ss
        PpRMa2GwAiBrhzIZcs0JlmIdZDh+CfSo6tuI49LDq7qlVMzJWfP+eA==
        -----END CERTIFICATE-----
        """

    /// The PKCS#8 private key of `serverCertificate`.
    static let serverKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8g6BdwkuZ/2UzC+L
        DttKVjIReHsyg1Q6K7caVLmqyvOhRANCAATArXxMmaHDqngJmXKhTlnCsYCYvr0y
        YLJiKIgXn0rK2ZZWf7E4icy0+2BGdRLSaZ7ryXqen7GUU16339/WAngS
        -----END PRIVATE KEY-----
        """

    /// A second self-signed certificate, for other.example.test.
    static let otherCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBkjCCATegAwIBAgIUfBBhyhaRjQewNwKsh0zi72tl6IAwCgYIKoZIzj0EAwIw
        HTEbMBkGA1UEAwwSb3RoZXIuZXhhbXBsZS50ZXN0MCAXDTI2MTIwNDE3MDQ0M1oY
        DzIxMjYxMTEwMTcwNDQzWjAdMRswGQYDVQQDDBJvdGhlci5leGFtcGxlLnRlc3Qw
        WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAShJAPq37hTny+IHednfiLAZMtd4077
        sFFqcefbVyOkEKuB7qQLXKGti63boaqf01huNf+cyb6+1RvA9c1p98Beo1MwUTAd
        BgNVHQ4EFgQU8PDXIga7C3i4M5+Z1vrZ+gF4sfQwHwYDVR0jBBgwFoAU8PDXIga7
        C3i4M5+Z1vrZ+gF4sfQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBG
        AiEA3kNmkZE9tWql4fqDuRjis2dtW2SU63Q5qE48sLLbXGMCIQDxjxmCpJiszP4L
        WVGM0Jg37xI1eSE/+XbU3Kx5GqkOmg==
        -----END CERTIFICATE-----
        """

    /// The private key of `otherCertificate`.
    static let otherKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQ99Z5yl8oOtC16y9
        XzGRhqh5nNQD0pzuZcixCU5Z6RShRANCAAShJAPq37hTny+IHednfiLAZMtd4077
        sFFqcefbVyOkEKuB7qQLXKGti63boaqf01huNf+cyb6+1RvA9c1p98Be
        -----END PRIVATE KEY-----
        """

    /// A self-signed certificate that expired on 2001-01-01.
    static let expiredCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBJTCBzAIBATAKBggqhkjOPQQDAjAfMR0wGwYDVQQDDBRleHBpcmVkLmV4YW1w
        bGUudGVzdDAeFw0wMDAxMDEwMDAwMDBaFw0wMTAxMDEwMDAwMDBaMB8xHTAbBgNV
        BAMMFGV4cGlyZWQuZXhhbXBsZS50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD
        QgAEhsqq+DHtx7W+V+aTVA+6amllhXQa0xVU1rd0gVQe2ZdH3AtkePdffnGnfBs7
        Og2lErfwdm8HX6w8jRUkiYcj1zAKBggqhkjOPQQDAgNIADBFAiEAmkUXOhgxJnV7
        4955tfjydAPg15toxkw2HBpP1b1wcVoCIEf35nktl1YbzK/XFCOgZPITy9//laE7
        bA8uK00iLdVx
        -----END CERTIFICATE-----
        """

    /// The private key of `expiredCertificate`.
    static let expiredKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNgVw+bLCqtIoCiuI
        pqKu9pAcDooYjQ73q2v/9v6KXpehRANCAASGyqr4Me3Htb5X5pNUD7pqaWWFdBrT
        FVTWt3SBVB7Zl0fcC2R4919+cad8Gzs6DaUSt/B2bwdfrDyNFSSJhyPX
        -----END PRIVATE KEY-----
        """

    /// A P-256 private key as an SEC 1 `EC PRIVATE KEY` block.
    static let p256SEC1 = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIKcXXClq0UzivfBGgg5NuBMQ/KOXRUv2YJSHnw1LDCeRoAoGCCqGSM49
        AwEHoUQDQgAEAfmRQYlgNHHlEnt/kaSv9fNRwggOrMRUcNNmjZGzEV6ORTGDKPKQ
        SAYV3VpNbw8CI9TCcLqfuQJx2OmrNI11TA==
        -----END EC PRIVATE KEY-----
        """

    /// The same P-256 key as a PKCS#8 `PRIVATE KEY` block.
    static let p256PKCS8 = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpxdcKWrRTOK98EaC
        Dk24ExD8o5dFS/ZglIefDUsMJ5GhRANCAAQB+ZFBiWA0ceUSe3+RpK/181HCCA6s
        xFRw02aNkbMRXo5FMYMo8pBIBhXdWk1vDwIj1MJwup+5AnHY6as0jXVM
        -----END PRIVATE KEY-----
        """

    /// A P-384 private key, which ES256 cannot use.
    static let p384Key = """
        -----BEGIN EC PRIVATE KEY-----
        MIGkAgEBBDDZuH/Zvi+SK9auyJXQW+XHRx1o+MEkgm5R9gKGEig83m1anZFbDYkH
        mvg64GHhbAKgBwYFK4EEACKhZANiAAQTqNpUtYwj4fFBmkjNNk0DPvOX0+wXwecn
        uqBUS09lu4wfvuwMbZYHIc/h1pDnB7dRGS63I5ZXTzcf2XCw71ytHr2neswJ19UP
        Zr+sGazAU3J9shIagWX7aMaEjBxmtKY=
        -----END EC PRIVATE KEY-----
        """

    /// An Ed25519 private key, which ES256 cannot use.
    static let ed25519Key = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIK7MqPQVqeOq0MHapluEOR0BCRppMIkDE7fQAPRosu2G
        -----END PRIVATE KEY-----
        """
}

extension TestMaterial {
    /// A self-signed P-256 certificate valid from 2098-01-02T03:04:05Z (a GeneralizedTime) to 2099,
    /// made with Python's cryptography package, since the openssl 3.0 command cannot set a future start.
    static let futureCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBLTCB06ADAgECAgEBMAoGCCqGSM49BAMCMB4xHDAaBgNVBAMME2Z1dHVyZS5l
        eGFtcGxlLnRlc3QwIhgPMjA5ODAxMDIwMzA0MDVaGA8yMDk5MDEwMTAwMDAwMFow
        HjEcMBoGA1UEAwwTZnV0dXJlLmV4YW1wbGUudGVzdDBZMBMGByqGSM49AgEGCCqG
        SM49AwEHA0IABHxYTIJPPjOE2sGKquciKAD8R30PhB2lDMAN7iwyhJXYa2KEOQbk
        /4uyYMriyYF05RsLmedq/09hlcCiqK9Ia2UwCgYIKoZIzj0EAwIDSQAwRgIhAOR0
        gkwfVJKl7RrF7Si846SJNkzWqoAeQnRrJ9+MgAb2AiEAjl8wcIB24QosQb7CpqEU
        y753Cuq1/T3LjxZJ2mXI4ms=
        -----END CERTIFICATE-----

        """

    /// The PKCS#8 private key of `futureCertificate`.
    static let futureKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAXQY1o57Nq/UweJZ
        mEI6IU7jMwt5PUaoE1j3+rna8OqhRANCAAR8WEyCTz4zhNrBiqrnIigA/Ed9D4Qd
        pQzADe4sMoSV2GtihDkG5P+LsmDK4smBdOUbC5nnav9PYZXAoqivSGtl
        -----END PRIVATE KEY-----

        """
}
