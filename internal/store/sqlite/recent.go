package sqlite

import (
	"sort"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// recentKeep is how many of the messages last committed to a topic the
// store keeps in memory for its queues (recentMessages).
const recentKeep = 256

// recentMessages keeps, per topic, the messages this process's group
// commits last published, in the clear, with their offsets. A queue that
// has read everything before them takes them from here instead of reading
// back from disk what was committed a moment ago: a read transaction
// whose page cache the commit has just emptied, the payload to open and
// the metadata to decode, for every batch (about 4% of the hub's CPU at
// full load). The table stays the truth: a queue uses an entry only when
// it is the very next offset after the last one it read, and goes to disk
// at the first gap (a message another process published, such as `iceshub
// dlq replay`, or one this process wrote outside a group commit) or when
// it has fallen behind what is kept here.
type recentMessages struct {
	mu     sync.Mutex
	topics map[string][]recentMessage
}

// recentMessage is one committed message of a topic.
type recentMessage struct {
	offset   int64
	uuid     string
	payload  []byte
	metadata message.Metadata
}

// add appends committed messages of topic, in the order of their offsets.
func (r *recentMessages) add(topic string, ms []recentMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.topics == nil {
		r.topics = map[string][]recentMessage{}
	}
	kept := append(r.topics[topic], ms...)
	if len(kept) > 2*recentKeep {
		// Compact rarely, so that adding costs a copy per recentKeep
		// messages rather than per message.
		kept = append([]recentMessage(nil), kept[len(kept)-recentKeep:]...)
	}
	r.topics[topic] = kept
}

// after returns up to limit messages of topic following offset without a
// gap: the first has offset+1 and each the next offset. It returns none
// when the message after offset is not kept. more is false when it
// returned every message kept after offset, so that the queue has read
// all this process committed; true when it stopped at limit or at a gap,
// behind which the table may hold more.
func (r *recentMessages) after(topic string, offset int64, limit int) (out []recentMessage, more bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.topics[topic]
	i := sort.Search(len(kept), func(i int) bool { return kept[i].offset > offset })
	for ; i < len(kept) && len(out) < limit; i++ {
		if kept[i].offset != offset+1 {
			return out, true
		}
		out = append(out, kept[i])
		offset++
	}
	return out, i < len(kept)
}

// pendingRecent is a message written by the group commit in progress,
// kept for recentMessages if its caller's writes commit.
type pendingRecent struct {
	caller int
	topic  string
	msg    recentMessage
}

// keepCommitted hands the messages of the callers whose writes committed
// to recentMessages, per topic in the order they were written, which is
// the order of their offsets.
func (s *SQLite) keepCommitted(pending []pendingRecent, results []error) {
	var byTopic map[string][]recentMessage
	for _, p := range pending {
		if results[p.caller] != nil {
			continue
		}
		if byTopic == nil {
			byTopic = map[string][]recentMessage{}
		}
		byTopic[p.topic] = append(byTopic[p.topic], p.msg)
	}
	for t, ms := range byTopic {
		s.recent.add(t, ms)
	}
}
