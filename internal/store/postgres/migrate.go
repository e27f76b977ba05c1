package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"

	"github.com/iceshub/iceshub/internal/store"
)

// The schema is kept by versioned migrations (pressly/goose), embedded in
// the binary: migrations/NNNNN_name.sql, each with its Up and Down. goose
// records the versions applied in goose_db_version. Several hubs starting
// at once on a new database migrate one at a time: the provider holds a
// PostgreSQL advisory lock while it works.

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationState is one migration and whether it is applied.
type MigrationState = store.MigrationState

// provider returns a goose provider on the pool's connections; close it
// after use (the pool stays open).
func (p *Postgres) provider(ctx context.Context) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	// goose looks for its table in schema public unless told: the
	// database's search_path may name another (a schema per deployment).
	var schema string
	if err := p.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("store: migrations: find the schema: %w", err)
	}
	versions, err := database.NewStore(database.DialectPostgres, schema+".goose_db_version")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("store: migration lock: %w", err)
	}
	db := stdlib.OpenDBFromPool(p.pool)
	prov, err := goose.NewProvider("", db, sub, goose.WithStore(versions), goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return prov, nil
}

// schemaReady migrates the schema when the options say so, else refuses a
// schema that is not current.
func (p *Postgres) schemaReady(ctx context.Context) error {
	if p.opts.Migrate {
		_, err := p.Migrate(ctx)
		return err
	}
	if p.opts.AnySchema {
		return nil
	}
	states, err := p.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	for _, s := range states {
		if !s.Applied {
			return fmt.Errorf("store: the PostgreSQL schema is not current (migration %d %s is not applied): run `iceshub migrate`, or set store.migrate: auto", s.Version, s.Name)
		}
	}
	return nil
}

// Migrate applies every migration not yet applied, in order, and returns
// the versions it applied.
func (p *Postgres) Migrate(ctx context.Context) ([]int64, error) {
	prov, err := p.provider(ctx)
	if err != nil {
		return nil, err
	}
	defer prov.Close()
	res, err := prov.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migrate the PostgreSQL schema: %w", err)
	}
	var out []int64
	for _, r := range res {
		out = append(out, r.Source.Version)
	}
	return out, nil
}

// MigrationStatus lists every migration the binary holds and whether the
// database has it.
func (p *Postgres) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	prov, err := p.provider(ctx)
	if err != nil {
		return nil, err
	}
	defer prov.Close()
	st, err := prov.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: read the PostgreSQL schema's migrations: %w", err)
	}
	return store.MigrationStates(st), nil
}
