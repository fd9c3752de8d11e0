package proxywasm

import (
	"sync"
)

// sharedData is the host's key-value store (proxy_get/set_shared_data),
// one namespace per VM id, with a compare-and-swap token per value.
type sharedData struct {
	mu   sync.Mutex
	cas  uint32 // the last token handed out
	vals map[string]map[string]*sharedValue
}

type sharedValue struct {
	data []byte
	cas  uint32
}

func (s *sharedData) init() { s.vals = map[string]map[string]*sharedValue{} }

// get returns a copy of the value of key and its CAS token.
func (s *sharedData) get(vmID, key string) ([]byte, uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[vmID][key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), v.data...), v.cas, true
}

// set stores a copy of data under key. A non-zero cas must be the
// value's current token, else set reports a mismatch (statusCasMismatch).
func (s *sharedData) set(vmID, key string, data []byte, cas uint32) status {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.vals[vmID]
	if m == nil {
		m = map[string]*sharedValue{}
		s.vals[vmID] = m
	}
	v, ok := m[key]
	if cas != 0 && (!ok || v.cas != cas) {
		return statusCasMismatch
	}
	if !ok {
		v = &sharedValue{}
		m[key] = v
	}
	s.cas++
	if s.cas == 0 { // 0 means "no CAS"; never hand it out
		s.cas++
	}
	v.data, v.cas = append([]byte(nil), data...), s.cas
	return statusOK
}

// sharedQueues are the host's queues (proxy_*_shared_queue): named per
// VM id, addressed by token, each owned by the VM that registered it last,
// which is told through proxy_on_queue_ready when an item arrives.
type sharedQueues struct {
	mu     sync.Mutex
	byName map[[2]string]uint32 // {vmID, name} -> token
	queues map[uint32]*sharedQueue
	last   uint32
}

type sharedQueue struct {
	items [][]byte
	owner *vm
}

func (q *sharedQueues) init() {
	q.byName = map[[2]string]uint32{}
	q.queues = map[uint32]*sharedQueue{}
}

// register returns the token of the queue name of vmID, creating it, and
// makes owner its owner.
func (q *sharedQueues) register(vmID, name string, owner *vm) uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := [2]string{vmID, name}
	token, ok := q.byName[key]
	if !ok {
		q.last++
		token = q.last
		q.byName[key] = token
		q.queues[token] = &sharedQueue{}
	}
	q.queues[token].owner = owner
	return token
}

func (q *sharedQueues) resolve(vmID, name string) (uint32, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	token, ok := q.byName[[2]string{vmID, name}]
	return token, ok
}

// enqueue appends a copy of data and returns the queue's owner to notify.
func (q *sharedQueues) enqueue(token uint32, data []byte) (*vm, status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.queues[token]
	if !ok {
		return nil, statusNotFound
	}
	sq.items = append(sq.items, append([]byte(nil), data...))
	return sq.owner, statusOK
}

func (q *sharedQueues) dequeue(token uint32) ([]byte, status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.queues[token]
	if !ok {
		return nil, statusNotFound
	}
	if len(sq.items) == 0 {
		return nil, statusEmpty
	}
	item := sq.items[0]
	sq.items[0] = nil
	sq.items = sq.items[1:]
	return item, statusOK
}
