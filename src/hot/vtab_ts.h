/* What the virtual tables over events (the hot store's ss_facts, the cold
 * store's cold_*) take from SQLite's plan: the usable comparisons of their ts
 * column, handed to xFilter in order, one character per argument ('=', '<',
 * 'l' for <=, '>', 'g' for >=). Comparisons under a collation other than
 * BINARY are left to SQLite, since the tables order ts byte by byte. Include
 * after sqlite3.h (or sqlite3ext.h in an extension). */
#ifndef SS_HOT_VTAB_TS_H
#define SS_HOT_VTAB_TS_H

/* Fills ops (room for max + 1) and the constraints' argvIndex and omit; sets
 * *lower, *upper and *eq when a bound of that kind is among them. Returns
 * how many there are. */
static inline int ss_vtab_ts_constraints(sqlite3_index_info *info, int ts_col, int max, int omit,
                                         char *ops, int *lower, int *upper, int *eq)
{
    int n = 0;
    for (int i = 0; i < info->nConstraint && n < max; i++) {
        const struct sqlite3_index_constraint *k = &info->aConstraint[i];
        if (!k->usable || ts_col < 0 || k->iColumn != ts_col)
            continue;
        char op;
        switch (k->op) {
        case SQLITE_INDEX_CONSTRAINT_EQ:
            op = '=', *eq = 1;
            break;
        case SQLITE_INDEX_CONSTRAINT_LT:
            op = '<', *upper = 1;
            break;
        case SQLITE_INDEX_CONSTRAINT_LE:
            op = 'l', *upper = 1;
            break;
        case SQLITE_INDEX_CONSTRAINT_GT:
            op = '>', *lower = 1;
            break;
        case SQLITE_INDEX_CONSTRAINT_GE:
            op = 'g', *lower = 1;
            break;
        default:
            continue;
        }
        const char *coll = sqlite3_vtab_collation(info, i);
        if (coll && sqlite3_stricmp(coll, "BINARY") != 0)
            continue;
        ops[n++] = op;
        info->aConstraintUsage[i].argvIndex = n;
        info->aConstraintUsage[i].omit = (unsigned char)omit;
    }
    ops[n] = '\0';
    return n;
}

#endif
