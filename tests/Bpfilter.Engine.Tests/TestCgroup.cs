using Bpfilter.Engine.Kernel;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// A cgroup v2 directory of the test's own (bpft-ID under the cgroup2 mount). A socket belongs to the cgroup of
/// the process that creates it, so <see cref="CreateInside{T}"/> moves this process in, makes the socket, and moves
/// it back at once.
/// </summary>
public sealed class TestCgroup : IDisposable
{
    private static readonly object MoveLock = new();

    public TestCgroup()
    {
        Mount = Cgroups.Cgroup2Mount();
        Relative = $"bpft-{Guid.NewGuid().ToString("N")[..6]}";
        Directory.CreateDirectory(Path);
    }

    public string Mount { get; }
    public string Relative { get; }
    public string Path => System.IO.Path.Combine(Mount, Relative);

    public T CreateInside<T>(Func<T> create)
    {
        lock (MoveLock)
        {
            var home = File.ReadLines("/proc/self/cgroup").First(l => l.StartsWith("0::", StringComparison.Ordinal))[3..];
            var pid = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllText(System.IO.Path.Combine(Path, "cgroup.procs"), pid);
            try
            {
                return create();
            }
            finally
            {
                File.WriteAllText(System.IO.Path.Combine(Mount + home, "cgroup.procs"), pid);
            }
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path);
    }
}
