package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// The end-to-end tests of the modes that name a socket's owner re-execute
// this test binary as helper processes, placed into cgroups of the test's
// own, and drive them one command per line over stdin and stdout. This
// file holds what those helpers share.

// serveCommands answers each input line, split into fields, with
// "ok REPLY" or "err MESSAGE" on one line, until in closes.
func serveCommands(in io.Reader, out io.Writer, do func(args []string) (string, error)) int {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		reply, err := do(strings.Fields(sc.Text()))
		if err != nil {
			fmt.Fprintf(out, "err %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(out, "ok %s\n", reply)
	}
	return 0
}

// connTable is a helper's listener and its connections, by the ID that the
// commands name them with.
type connTable struct {
	ln    net.Listener
	conns map[int]net.Conn
	next  int
}

func newConnTable() connTable { return connTable{conns: map[int]net.Conn{}} }

// put keeps c and returns its ID.
func (t *connTable) put(c net.Conn) int {
	id := t.next
	t.next++
	t.conns[id] = c
	return id
}

// get returns the connection whose ID is arg.
func (t *connTable) get(arg string) (net.Conn, error) {
	id, err := strconv.Atoi(arg)
	if err != nil {
		return nil, err
	}
	c, ok := t.conns[id]
	if !ok {
		return nil, fmt.Errorf("no connection %d", id)
	}
	return c, nil
}

// drop forgets the connection whose ID is arg and closes it.
func (t *connTable) drop(arg string) error {
	c, err := t.get(arg)
	if err != nil {
		return err
	}
	id, _ := strconv.Atoi(arg)
	delete(t.conns, id)
	return c.Close()
}
