namespace Bpfilter.Engine;

/// <summary>What kind of failure an error is; the cmdlets turn it into PowerShell's ErrorCategory of the same name.</summary>
public enum FailureCategory
{
    InvalidArgument,
    InvalidData,
    ParserError,
    ObjectNotFound,
    PermissionDenied,
    ResourceUnavailable,
    ResourceBusy,
    ResourceExists,
    InvalidOperation,
    DeviceError,
    NotImplemented,
    SecurityError,
}

/// <summary>
/// Base of every error the engine raises on purpose. <see cref="ErrorId"/> is stable: scripts match on it
/// (the cmdlets prefix it with "Bpfilter.").
/// </summary>
public class BpfilterException : Exception
{
    public BpfilterException(string errorId, FailureCategory category, string message, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Category = category;
    }

    public string ErrorId { get; }
    public FailureCategory Category { get; }
}
