using System.Runtime.InteropServices;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// A system call failed. The message says what was being done, the errno name and its meaning. Failures the module
/// knows have an id and category of their own; any other is KernelCallFailed, whose category follows the errno.
/// </summary>
public class KernelException : BpfilterException
{
    public KernelException(string operation, int errno, string? hint = null)
        : this(operation, errno, hint, "KernelCallFailed", CategoryOf(errno))
    {
    }

    public KernelException(string operation, int errno, string? hint, string errorId, FailureCategory category)
        : base(errorId, category, $"{operation}: {ErrnoName(errno)} ({Marshal.GetPInvokeErrorMessage(errno)})" + (hint is null ? "" : $". {hint}"))
    {
        Operation = operation;
        Errno = errno;
    }

    public string Operation { get; }
    public int Errno { get; }

    public static string ErrnoName(int errno) => errno switch
    {
        1 => "EPERM", 2 => "ENOENT", 4 => "EINTR", 7 => "E2BIG", 9 => "EBADF", 11 => "EAGAIN", 12 => "ENOMEM",
        13 => "EACCES", 14 => "EFAULT", 16 => "EBUSY", 17 => "EEXIST", 19 => "ENODEV", 20 => "ENOTDIR",
        22 => "EINVAL", 28 => "ENOSPC", 34 => "ERANGE", 40 => "ELOOP", 67 => "ENOLINK", 71 => "EPROTO", 95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT", 116 => "ESTALE", 524 => "ENOTSUPP",
        _ => $"errno {errno}",
    };

    /// <summary>KernelCallFailed's category: what the errno says went wrong.</summary>
    public static FailureCategory CategoryOf(int errno) => errno switch
    {
        1 or 13 => FailureCategory.PermissionDenied,
        2 or 19 => FailureCategory.ObjectNotFound,
        16 or 17 => FailureCategory.ResourceBusy,
        12 or 28 or 7 => FailureCategory.ResourceUnavailable,
        95 or 524 => FailureCategory.NotImplemented,
        _ => FailureCategory.DeviceError,
    };
}

/// <summary>The verifier refused a program. <see cref="VerifierLog"/> holds the kernel's full explanation.</summary>
public sealed class VerifierException : KernelException
{
    public VerifierException(string programName, int errno, string verifierLog)
        : base($"the kernel verifier rejected program {programName}", errno, Summary(verifierLog), "VerifierRejected", FailureCategory.InvalidOperation)
    {
        VerifierLog = verifierLog;
    }

    public string VerifierLog { get; }

    /// <summary>The verifier's reason: the last lines before the statistics line.</summary>
    public static string Summary(string log)
    {
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("processed ", StringComparison.Ordinal) && !l.StartsWith("verification time", StringComparison.Ordinal))
            .ToList();
        return lines.Count == 0 ? "the verifier gave no reason" : "Verifier: " + string.Join(" / ", lines.TakeLast(3));
    }
}
