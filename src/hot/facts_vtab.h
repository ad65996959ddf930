/* The SQL face of the SQLite hot store's fact blocks (facts_vtab.c). */
#ifndef SS_HOT_FACTS_VTAB_H
#define SS_HOT_FACTS_VTAB_H

struct sqlite3;

/* Registers the module ss_facts on a connection, before anything reads
 * orders_data, payments_data or cancellations_data. */
int ss_hot_facts_register(struct sqlite3 *db);

#endif
