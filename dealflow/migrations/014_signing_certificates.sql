-- The signing certificate of each fully signed version of a deal's statement of work: the PDF
-- attached to the fully-signed mail, its SHA-256 and what it certifies. Written once, never
-- changed.
CREATE TABLE signing_certificates (
    deal_id      text NOT NULL,
    sow_version  integer NOT NULL CHECK (sow_version >= 1),
    sow_sha256   text NOT NULL CHECK (sow_sha256 ~ '^[0-9a-f]{64}$'),
    completed_at timestamptz NOT NULL,
    -- The certificate's input exactly as given (the PDF's fonts may simplify names).
    printed      jsonb NOT NULL,
    pdf          bytea NOT NULL,
    pdf_sha256   text NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
    issued_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deal_id, sow_version)
);

CREATE TRIGGER signing_certificates_immutable
    BEFORE UPDATE OR DELETE ON signing_certificates
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER signing_certificates_no_truncate
    BEFORE TRUNCATE ON signing_certificates
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
