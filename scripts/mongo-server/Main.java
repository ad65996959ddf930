/* A MongoDB-wire server for development and tests (scripts/mongo): the
 * in-process server of de.bwaldvogel:mongo-java-server on its H2 backend, so
 * that the data of a server that was stopped survives its restart.
 *
 *   java -cp LIBS:CLASSES Main HOST PORT FILE
 *
 * FILE is the H2 MVStore file. SIGTERM closes the store cleanly. */
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;

public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Main HOST PORT FILE");
            System.exit(2);
        }
        H2Backend backend = new H2Backend(args[2]);
        MongoServer server = new MongoServer(backend);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            backend.close();
        }));
        server.bind(args[0], Integer.parseInt(args[1]));
        System.err.println("listening on " + args[0] + ":" + args[1] + ", data in " + args[2]);
        Thread.currentThread().join();
    }
}
