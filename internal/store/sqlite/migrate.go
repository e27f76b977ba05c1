package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the database/sql driver goose works through, on the same file

	"github.com/iceshub/iceshub/internal/store"
)

// The embedded store's schema is kept by versioned migrations (pressly/
// goose), as the PostgreSQL store's is: migrations/00001_initial.sql makes
// the tables, and the Go migrations below upgrade a database written
// before versioned migrations, each doing nothing to one that needs
// nothing. Open applies what is not applied yet; goose records what is in
// goose_db_version. A new migration is a new file or a new Go migration
// here, never an edit of an applied one.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// goMigrations are the upgrades of databases from before versioned
// migrations, in the order they were written.
var goMigrations = []*goose.Migration{
	goose.NewGoMigration(2, &goose.GoFunc{RunTx: chainDisclosures}, nil),
	goose.NewGoMigration(3, &goose.GoFunc{RunTx: indexSubjectsByReferral}, nil),
	goose.NewGoMigration(4, &goose.GoFunc{RunTx: clusterReceiptsByReferral}, nil),
	goose.NewGoMigration(7, &goose.GoFunc{RunTx: recordPermissions}, nil),
}

// MigrationState is one migration and whether it is applied.
type MigrationState = store.MigrationState

// migrate applies to the database at path every migration not applied
// yet, and returns the state of each.
func migrate(ctx context.Context, path string) ([]MigrationState, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	defer db.Close()
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	prov, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithGoMigrations(goMigrations...), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	if _, err := prov.Up(ctx); err != nil {
		return nil, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	st, err := prov.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: read the migrations of %s: %w", path, err)
	}
	states := store.MigrationStates(st)
	for i := range states {
		if states[i].Name == "" {
			states[i].Name = goMigrationNames[states[i].Version]
		}
	}
	return states, nil
}

// goMigrationNames name the Go migrations for `iceshub migrate status`.
var goMigrationNames = map[int64]string{
	2: "chain the disclosure record (Go)",
	3: "index subjects by referral (Go)",
	4: "cluster receipts by referral (Go)",
	7: "referral permission column (Go)",
}

// Migrate brings the schema of the store file at path up to date, as Open
// does, without opening the store: for a tool that reads the file itself
// (storecopy), so that it finds the tables and columns of this release.
// The store must not be in use.
func Migrate(ctx context.Context, path string) ([]MigrationState, error) {
	return migrate(ctx, path)
}

// MigrationStatus lists the migrations of the store and which are applied
// (all of them: Open applies them).
func (s *SQLite) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	return migrate(ctx, s.path)
}

// hasObject reports whether the schema has an object of type typ named
// name.
func hasObject(ctx context.Context, tx *sql.Tx, typ, name string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = ? AND name = ?`, typ, name).Scan(&n); err != nil {
		return false, fmt.Errorf("look for %s %s: %w", typ, name, err)
	}
	return n > 0, nil
}

// recordPermissions adds the referrals' column for the person's express
// permission an operator recorded when releasing a held copy
// (store.RefUpdate.Permission): JSON of model.Permission, codes and a
// date, empty for none. A Go migration because SQLite cannot add a column
// only when it is missing, and a database whose migration record was lost
// runs every migration again.
func recordPermissions(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('referrals') WHERE name = 'permission'`).Scan(&n); err != nil {
		return fmt.Errorf("read referrals columns: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE referrals ADD COLUMN permission TEXT NOT NULL DEFAULT ''`); err != nil {
		return fmt.Errorf("add the referrals' permission column: %w", err)
	}
	return nil
}

// chainDisclosures brings a disclosures table from before subjects and the
// chain up to date: it adds the columns and chains the entries already
// there, in id order (their subjects stay empty).
func chainDisclosures(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('disclosures') WHERE name = 'hash'`).Scan(&n); err != nil {
		return fmt.Errorf("read disclosures columns: %w", err)
	}
	if n > 0 {
		return nil
	}
	for _, c := range []string{"subject", "prev_hash", "hash"} {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE disclosures ADD COLUMN `+c+` TEXT NOT NULL DEFAULT ''`); err != nil {
			return fmt.Errorf("add disclosure chain columns: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+disclosureColumns+` FROM disclosures ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read disclosures to chain: %w", err)
	}
	var entries []store.ChainEntry
	for rows.Next() {
		var e store.ChainEntry
		if err := rows.Scan(&e.ID, &e.At, &e.ReferralID, &e.CorrelationID, &e.Recipient, &e.Kind, &e.Fields, &e.Purpose,
			&e.LawfulBasis, &e.Outcome, &e.Detail, &e.Subject, &e.PrevHash, &e.Hash); err != nil {
			rows.Close()
			return fmt.Errorf("read disclosures to chain: %w", err)
		}
		entries = append(entries, e)
	}
	rows.Close()
	prev := ""
	for _, e := range entries {
		e.PrevHash = prev
		e.Hash = e.Digest()
		if _, err := tx.ExecContext(ctx, `UPDATE disclosures SET prev_hash = ?, hash = ? WHERE id = ?`, e.PrevHash, e.Hash, e.ID); err != nil {
			return fmt.Errorf("chain existing disclosures: %w", err)
		}
		prev = e.Hash
	}
	return nil
}

// indexSubjectsByReferral replaces the index of disclosures by subject, in
// databases that have it, by disclosure_subjects, filled from the entries.
func indexSubjectsByReferral(ctx context.Context, tx *sql.Tx) error {
	return replaceOld(ctx, tx, "index", "disclosures_subject", []string{`INSERT OR IGNORE INTO disclosure_subjects (subject, referral_id)
		SELECT DISTINCT subject, referral_id FROM disclosures WHERE subject != ''`, `DROP INDEX disclosures_subject`})
}

// clusterReceiptsByReferral moves the receipts of a database written before
// they were clustered by referral (table delivered, keyed by idempotency
// key) into receipts, and drops the old table.
func clusterReceiptsByReferral(ctx context.Context, tx *sql.Tx) error {
	return replaceOld(ctx, tx, "table", "delivered", []string{`INSERT OR IGNORE INTO receipts
			(referral_id, idempotency_key, recipient, kind, partner_reference, status_code, at)
		SELECT referral_id, idempotency_key, recipient, kind, partner_reference, status_code, at FROM delivered`, `DROP TABLE delivered`})
}

// replaceOld runs statements, which move what the schema object typ name
// of an older database holds to where it is kept now and drop it, when the
// database has that object.
func replaceOld(ctx context.Context, tx *sql.Tx, typ, name string, statements []string) error {
	old, err := hasObject(ctx, tx, typ, name)
	if err != nil || !old {
		return err
	}
	for _, q := range statements {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("replace %s %s: %w", typ, name, err)
		}
	}
	return nil
}
