-- +goose Up
-- The person's express permission an operator recorded when releasing a
-- held copy (store.RefUpdate.Permission), JSON of model.Permission (codes
-- and a date, no personal data); '' for none. It stands for the referral's
-- later messages until an amendment brings a permission of its own. A
-- column with a default: hubs of the release before read and write the
-- table as they did.
ALTER TABLE referrals ADD COLUMN permission TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE referrals DROP COLUMN permission;
