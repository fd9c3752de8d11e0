// Package controller turns desired state into actual state. It watches
// Functions and Revisions in the store; a new or changed template cuts the
// next immutable Revision, every Revision gets an instance pool sized for
// its traffic, routes are programmed into the gateway's table, and the
// status of both kinds says what is ready and, when something is not, why.
//
// It owns reconciliation only. It must not validate or default resources
// (package api does), serve requests (package activator does), or decide
// scale beyond the fixed sizes the Revision's annotations ask for (the
// autoscaler will).
package controller
