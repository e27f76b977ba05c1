package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Cancellations (Options.CancelEvery): a share of the accepted referrals is
// followed, after its 200, by the requester's cancellation of the same
// referral (FHIR: its ServiceRequest revoked, flow F2). The hub must never
// deliver the cancellation before the order it cancels, whichever replica
// delivers each.

// serviceRequestID finds the id of a bundle's ServiceRequest as the
// fixtures write it.
var serviceRequestID = regexp.MustCompile(`"resourceType": "ServiceRequest",\s*"id": "([0-9a-f-]{36})"`)

// srOffset returns where the id of b's ServiceRequest is in its body.
func srOffset(body []byte) (int, error) {
	m := serviceRequestID.FindSubmatchIndex(body)
	if m == nil {
		return 0, fmt.Errorf("bench: no ServiceRequest id in the bundle")
	}
	return m[2], nil
}

// cancelTemplate is the cancellation fixture, with where its ServiceRequest
// id and its person's NHS number are.
type cancelTemplate struct {
	b benchBundle
	// sr and nhs are the offsets of the ServiceRequest id and of the NHS
	// number, all of them.
	sr, nhs []int
}

func loadCancelTemplate(dir string) (*cancelTemplate, error) {
	body, err := os.ReadFile(filepath.Join(dir, "cancellation-revoked.json"))
	if err != nil {
		return nil, fmt.Errorf("bench fixtures (run from the repository root or pass --fixtures): %w", err)
	}
	at, err := srOffset(body)
	if err != nil {
		return nil, err
	}
	t := &cancelTemplate{b: newBenchBundle(body, 1)}
	id := body[at : at+36]
	for i := 0; ; {
		j := bytes.Index(body[i:], id)
		if j < 0 {
			break
		}
		t.sr = append(t.sr, i+j)
		i += j + 36
	}
	for _, at := range t.b.people {
		t.nhs = append(t.nhs, at...)
	}
	t.b.people = nil // the person is the referral's, copied in
	return t, nil
}

// cancellationOf returns a cancellation of the referral whose body (a fresh
// copy of rb) is referral: the referral's ServiceRequest id and person, new
// message and bundle ids.
func (t *cancelTemplate) cancellationOf(rb benchBundle, referral []byte) []byte {
	out := t.b.fresh()
	id := referral[rb.sr : rb.sr+36]
	for _, at := range t.sr {
		copy(out[at:at+36], id)
	}
	if len(rb.people) > 0 {
		nhs := referral[rb.people[0][0] : rb.people[0][0]+10]
		for _, at := range t.nhs {
			copy(out[at:at+10], nhs)
		}
	}
	return out
}
