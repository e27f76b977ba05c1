package sqlite

import (
	"testing"

	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/storetest"
)

// The store's contract suite, on a new store in a temporary directory.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Engine { return openTemp(t, t.TempDir()) })
}
