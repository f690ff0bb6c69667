package ipfix

import "sync"

// queue holds the messages waiting for the sender, up to a number of
// bytes: a bound on memory that fits the export's size, with no buffer
// allocated before it is used (a channel's is, whole).
type queue struct {
	mu     sync.Mutex
	ready  *sync.Cond
	msgs   []Message
	head   int
	bytes  int
	max    int
	closed bool
}

func newQueue(maxBytes int) *queue {
	q := &queue{max: maxBytes}
	q.ready = sync.NewCond(&q.mu)
	return q
}

// push adds m, or reports false when it does not fit.
func (q *queue) push(m Message) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.bytes+len(m.B) > q.max {
		return false
	}
	q.msgs = append(q.msgs, m)
	q.bytes += len(m.B)
	q.ready.Signal()
	return true
}

// pop waits for the next message; it reports false once the queue is
// closed and empty.
func (q *queue) pop() (Message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.msgs) && !q.closed {
		q.ready.Wait()
	}
	if q.head == len(q.msgs) {
		return Message{}, false
	}
	m := q.msgs[q.head]
	q.msgs[q.head] = Message{}
	q.head++
	q.bytes -= len(m.B)
	if q.head == len(q.msgs) { // empty: start the slice over
		q.msgs, q.head = q.msgs[:0], 0
	}
	return m, true
}

// close lets pop return what is left, then false.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.ready.Broadcast()
}

// drop empties the queue and returns the data records it held.
func (q *queue) drop() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, m := range q.msgs[q.head:] {
		n += m.Records
	}
	clear(q.msgs)
	q.msgs, q.head, q.bytes = q.msgs[:0], 0, 0
	return n
}
