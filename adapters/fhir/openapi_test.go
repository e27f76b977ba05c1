package fhir_test

import (
	"testing"

	"github.com/iceshub/iceshub/adapters/internal/openapitest"
)

// TestOpenAPIDocumentIsValid loads the intake contract with kin-openapi:
// it resolves and is a valid OpenAPI document.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	openapitest.Load(t, "openapi.yaml")
}
